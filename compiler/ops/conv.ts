// Convolution and pooling over NHWC images, and their backward primitives.
import type { OpDef } from "./def.js";

const todo = (op: string) => (): never => {
  throw new Error(`${op} is not implemented yet`);
};

export const CONV = {
  conv2d: { infer: todo("conv2d"), eval: todo("conv2d") } satisfies OpDef<"conv2d">,
  conv2dBackpropInput: { infer: todo("conv2dBackpropInput"), eval: todo("conv2dBackpropInput") } satisfies OpDef<"conv2dBackpropInput">,
  conv2dBackpropFilter: { infer: todo("conv2dBackpropFilter"), eval: todo("conv2dBackpropFilter") } satisfies OpDef<"conv2dBackpropFilter">,
  maxPool2d: { infer: todo("maxPool2d"), eval: todo("maxPool2d") } satisfies OpDef<"maxPool2d">,
  maxPool2dGrad: { infer: todo("maxPool2dGrad"), eval: todo("maxPool2dGrad") } satisfies OpDef<"maxPool2dGrad">,
  avgPool2d: { infer: todo("avgPool2d"), eval: todo("avgPool2d") } satisfies OpDef<"avgPool2d">,
  avgPool2dGrad: { infer: todo("avgPool2dGrad"), eval: todo("avgPool2dGrad") } satisfies OpDef<"avgPool2dGrad">,
} as const;
