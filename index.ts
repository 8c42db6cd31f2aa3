// gradc's public surface: define a graph, differentiate it, check gradients,
// compile it to a kernel bundle, and load a bundle to train.
export { graph } from "./compiler/dsl/graph.js";
export type { GraphBuilder, ParamOptions, BuildResult } from "./compiler/dsl/graph.js";
export type { InitSpec } from "./compiler/dsl/init.js";
export * as nn from "./compiler/dsl/nn.js";
export { concat, stack } from "./compiler/dsl/functions.js";
export { Tensor } from "./compiler/ir/node.js";
export { Graph } from "./compiler/ir/graph.js";
export { GraphError } from "./compiler/ir/types.js";
export type { DType, Shape } from "./compiler/ir/types.js";
export { printGraph } from "./compiler/ir/printer.js";
export { verifyGraph } from "./compiler/ir/verify.js";
export { graphToJson, graphFromJson } from "./compiler/ir/json.js";
export type { GraphJson } from "./compiler/ir/json.js";
export { interpret, evaluate } from "./compiler/interp/interpret.js";
export { grad, vjp, hvp } from "./compiler/autodiff/grad.js";
export { checkGrads, formatGradReport, gradProbe } from "./compiler/autodiff/checkGrads.js";
export type { CheckGradsOptions, GradReport, TensorGradCheck } from "./compiler/autodiff/checkGrads.js";
export type { CompileOptions, ModelConfig, DataConfig, TrainingConfig } from "./compiler/config.js";
export { compile } from "./compiler/compile.js";
export type { CompileResult } from "./compiler/compile.js";
export type { Manifest, OptimizerSpec, ScheduleSpec } from "./runtime/manifest.js";
export { load } from "./runtime/load.js";
export type { Trainer, ParamStore, LoadOptions } from "./runtime/load.js";
export { makeDataset, splitDataset, subset, Batcher, loadArrays, loadMnist, permutation, accuracy, train } from "./runtime/index.js";
export type { Dataset, Column, TrainSummary } from "./runtime/index.js";
