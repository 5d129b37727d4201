// StepGate: sync mode's ordering made explicit. Step k may be dispatched only after the update of step
// k−1 is applied; the pipeline happens to emit synchronously today, and the gate keeps that an accident.

export class StepGate {
  /** Steps applied so far: a resumed run starts at its checkpoint's step. */
  private applied: number;
  private waiting: { step: number; resolve: () => void }[] = [];

  constructor(firstStep = 0) {
    this.applied = firstStep;
  }

  /** Resolves once steps 0..step−1 have been applied. */
  reached(step: number): Promise<void> {
    if (step <= this.applied) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push({ step, resolve }));
  }

  /** One more step applied. */
  advance(): void {
    this.applied++;
    this.waiting = this.waiting.filter((w) => {
      if (w.step > this.applied) return true;
      w.resolve();
      return false;
    });
  }
}
