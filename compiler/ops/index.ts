// The op table: every primitive's record, checked complete by its type.
import type { OpTable } from "./def.js";
import { SOURCES } from "./source.js";
import { ELEMENTWISE } from "./elementwise.js";
import { REDUCE } from "./reduce.js";
import { MOVEMENT } from "./movement.js";
import { INDEXING } from "./indexing.js";
import { MATMUL } from "./matmul.js";
import { CONV } from "./conv.js";
import { CHECKPOINT } from "./checkpoint.js";
import { RANDOM } from "./random.js";

export const OPS: OpTable = { ...SOURCES, ...ELEMENTWISE, ...REDUCE, ...MOVEMENT, ...INDEXING, ...MATMUL, ...CONV, ...CHECKPOINT, ...RANDOM };

export type { EvalEnv, OpDef, OpTable, NDArray, NodeOf } from "./def.js";
export type { OpKind, OpParams } from "../ir/kinds.js";
