// A value too big for a bundle's arena is refused while the graph is built,
// naming the op, the shapes and the user's line, not at load() with
// "Invalid typed array length".
import { describe, expect, it } from "vitest";
import { graph } from "../../../compiler/dsl/graph.js";
import * as nn from "../../../compiler/dsl/nn.js";
import { errorMessage } from "../../helpers.js";

describe("sizes past what an arena holds", () => {
  it("a huge param is refused at its line", () => {
    const msg = errorMessage(() => graph("huge", (g) => ({ loss: g.param("W", [100_000, 100_000]).sum() })));
    expect(msg).toMatch(/param/);
    expect(msg).toMatch(/"W" has shape \[100000,100000\]: 1\.00e\+10 elements, more than the 2147483647/);
    expect(msg).toMatch(/limits\.test\.ts:\d+/);
  });

  it("a huge intermediate (an outer product) is refused at its line", () => {
    const msg = errorMessage(() =>
      graph("outer", (g) => {
        const a = g.input("a", [60_000, 1]);
        const b = g.input("b", [1, 60_000]);
        return { loss: nn.mse(a.matmul(b), a.matmul(b)) };
      }),
    );
    expect(msg).toMatch(/matmul/);
    expect(msg).toMatch(/f32\[60000,60000\] has 3\.60e\+9 elements/);
    expect(msg).toMatch(/inputs: f32\[60000,1\], f32\[1,60000\]/);
  });
});
