// The `nn` namespace: composite layers and losses (composites.ts), embeddings,
// attention, dropout and batch norm (layers.ts).
export * from "./composites.js";
export { MASKED_SCORE, batchNorm, causalMask, dotProductAttention, dropout, embedding, multiHeadAttention } from "./layers.js";
export type { AttentionOptions, BatchNormOptions } from "./layers.js";
