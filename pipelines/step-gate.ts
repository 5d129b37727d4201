// StepGate: sync mode's ordering on the main thread. A step's jobs are posted as soon as its batch is
// packed, while the step before it may still run; the pool holds them until the gate releases the step,
// once the step is posted and every step before it is applied here (its telemetry taken, its schedule
// stepped, its checkpoint copied). Releasing a step is where its optimizer step is planned, so the
// optimizer's own count (Adam's t) advances once per step that runs.

export class StepGate {
  /** Steps applied so far: a resumed run starts at its checkpoint's step. */
  private applied: number;
  /** The last step posted. */
  private posted: number;

  constructor(
    firstStep: number,
    private readonly release: (step: number) => void,
  ) {
    this.applied = firstStep;
    this.posted = firstStep - 1;
  }

  /** Step `step`'s jobs are posted (steps are posted in order). */
  post(step: number): void {
    this.posted = step;
    if (step === this.applied) this.release(step);
  }

  /** One more step applied. */
  advance(): void {
    this.applied++;
    if (this.posted >= this.applied) this.release(this.applied);
  }
}
