// The runtime's public entry ("gradc/runtime"): load a kernel bundle, feed it
// data, train it, evaluate it. Nothing here depends on the compiler.
export { load, readManifest } from "./load.js";
export type { Trainer, ParamStore, LoadOptions } from "./load.js";
export { openBundle, parseManifest } from "./open.js";
export type { BundleIO, CheckpointFiles } from "./io.js";
export { nodeBundleIO } from "./nodeIO.js";
export { IntegrityError } from "./verify.js";
export { TrainingRun, planRun } from "./run.js";
export type { RunChoices, RunPlan } from "./run.js";
export type { LossScaleStatus } from "./lossScale.js";
export type { Feed, Feeds, FloatArray, SlotView } from "./arena.js";
export { learningRate, scheduleLr } from "./schedule.js";
export {
  Batcher,
  RandomShift,
  createRng,
  epochSeed,
  makeDataset,
  permutation,
  splitDataset,
  subset,
} from "./data.js";
export type { Column, Dataset } from "./data.js";
export { loadArrays, loadMnist, loadTrainingData, MNIST_PIXELS } from "./sources.js";
export type { TrainingData } from "./sources.js";
export { accuracy, argmax, main as train, trainHelp, writePlots } from "./trainer.js";
export type { AccuracySpec, TrainSummary, TrainIO } from "./trainer.js";
export { CheckedDevice, NumericsError, blameNode, describeFault, firstNonFinite, suspectNode } from "./numerics.js";
export type { NumericsFault } from "./numerics.js";
export { DEVICES } from "./devices.js";
export { NODE_DEVICES, createDevice } from "./nodeDevices.js";
export type { DeviceFactory } from "./devices.js";
export { isHostDevice } from "./device.js";
export type { Device, EntryPoint, HostDevice, KernelList, MaybePromise } from "./device.js";
export { createHostDevice } from "./hostDevice.js";
export type { KernelFn, KernelTable } from "./hostDevice.js";
export { GradNormLog, flagOf, readGradNorms, gradNormSeries, EXPLODING, VANISHING_ABSOLUTE, VANISHING_RELATIVE } from "./gradNorms.js";
export type { GradFlag, GradNormRow, GradSource } from "./gradNorms.js";
export { linePlot, escapeXml } from "./plot.js";
export type { PlotOptions, Series } from "./plot.js";
export { checkBundle, checkCommand, checkHelp, formatCheckReport } from "./check.js";
export type { CheckOptions, CheckReport, ParamCheck } from "./check.js";
export { loadSafetensors, saveSafetensors } from "./safetensors.js";
export type { NamedTensor } from "./safetensors.js";
export { mpiWorld, DEFAULT_MPI_LIBRARY, MPI_PACKAGES } from "./mpi.js";
export type { Communicator, CollectiveArray } from "./mpi.js";
export { DataParallel, ReplicaDivergence, gradientRanges } from "./dataParallel.js";
export type { AllReduceStats, DataParallelOptions } from "./dataParallel.js";
export { FORMAT_NAME, FORMAT_VERSION } from "./manifest.js";
export type * from "./manifest.js";
