// Mixed precision's dynamic loss scale (manifest.mixed): the backward pass
// starts from S instead of 1, so small gradients keep their digits in
// bfloat16; the step's kernels divide S out of the f32 gradients again. A
// step whose gradients are not finite (the scaled backward pass overflowed)
// is skipped and S halved; after `growthInterval` good steps in a row S
// doubles. S stays a power of two, so scaling and unscaling are exact.
import type { MixedSpec, Slot } from "./manifest.js";

/** Where the loss scale stands, as the trainer logs it. */
export interface LossScaleStatus {
  /** S for the next step. */
  readonly scale: number;
  /** Steps whose update was skipped because their gradients overflowed. */
  readonly skipped: number;
  /** Good steps in a row since S last changed. */
  readonly goodSteps: number;
}

/** The smallest and largest scale: S stays a normal f32 power of two. */
const MIN_SCALE = 2 ** -24;
const MAX_SCALE = 2 ** 126;

/** The scale's state machine; the trainer writes `scale` into `slot` before each step. */
export class LossScaler {
  private current: number;
  private skips = 0;
  private good = 0;

  constructor(
    readonly spec: MixedSpec,
    readonly slot: Slot,
  ) {
    this.current = spec.initialScale;
  }

  get scale(): number {
    return this.current;
  }

  /**
   * Records one step's outcome: with finite gradients the update may run
   * (true), and S doubles after `growthInterval` of them in a row; otherwise
   * S halves and the update is skipped (false).
   */
  record(finite: boolean): boolean {
    if (!finite) {
      this.skips++;
      this.good = 0;
      this.current = Math.max(MIN_SCALE, this.current / 2);
      return false;
    }
    if (++this.good >= this.spec.growthInterval) {
      this.good = 0;
      this.current = Math.min(MAX_SCALE, this.current * 2);
    }
    return true;
  }

  status(): LossScaleStatus {
    return { scale: this.current, skipped: this.skips, goodSteps: this.good };
  }
}
