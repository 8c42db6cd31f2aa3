// The `nn` namespace: composite layers and losses (composites.ts), embeddings,
// attention, dropout and batch norm (layers.ts).
export * from "./composites.js";
export { MASKED_SCORE, batchNorm, cachedMultiHeadAttention, causalMask, dotProductAttention, dropout, embedding, multiHeadAttention } from "./layers.js";
export type { AttentionCache, AttentionOptions, BatchNormOptions, CachedAttentionOptions } from "./layers.js";
