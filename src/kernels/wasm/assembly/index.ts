// The WebAssembly module's exports: every kernel, compiled together by scripts/build-wasm.mjs.
export { sgemm, sgemmPackA, sgemmPackedABytes, sgemmPart, sgemmScratchBytes } from './gemm';
export { gruBackward, gruForward, lstmOutputBackward, lstmOutputForward, lstmStateBackward, lstmStateForward } from './cells';
export { col2im, im2col } from './im2col';
export { addF32, addRowsF32, copyF32, ownLines, reluBackwardF32, reluF32, sumRowsF32, sumSlotsF32 } from './vector';
export { maxPoolF32 } from './pool';
export { adamF32, sgdF32 } from './optim';
