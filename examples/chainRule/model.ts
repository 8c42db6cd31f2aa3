// The chain rule by hand: a = 2x, b = a + 3, c = b². At x = 1, dc/dx = 2b · 2 = 20.
import { graph } from "gradc";

export default graph("chainRule", (g) => {
  const x = g.param("x", [], { init: 1 });
  const a = x.mul(2);
  const b = a.add(3);
  const c = b.square();
  return { loss: c, outputs: { a, b, c } };
});
