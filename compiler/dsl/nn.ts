// The `nn` namespace: composite layers and losses (composites.ts), embeddings,
// attention and dropout (layers.ts).
export * from "./composites.js";
export { MASKED_SCORE, causalMask, dotProductAttention, dropout, embedding, multiHeadAttention } from "./layers.js";
export type { AttentionOptions } from "./layers.js";
