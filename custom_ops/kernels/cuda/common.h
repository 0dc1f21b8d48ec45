// Shared by the CUDA kernels, the CPU kernels and the host emulation of the CUDA kernels: nothing
// here needs CUDA or TensorFlow headers, so the per-thread code of the GPU kernels compiles with a
// plain C++ compiler too, and CI can run it on the host (tests/custom_ops/test_cuda_host_emulation.py).
#ifndef STYLEGAN2_CUDA_COMMON_H_
#define STYLEGAN2_CUDA_COMMON_H_

#include <cstdint>

#if defined(__CUDACC__)
#define SG2_HD __host__ __device__ __forceinline__
#else
#define SG2_HD inline
#endif

// Element types of the C API (custom_ops/kernels/cuda/api.h); the numbers are part of that API.
#define SG2_FLOAT32 0
#define SG2_FLOAT16 1
#define SG2_BFLOAT16 2
#define SG2_FLOAT64 3

// Status codes of the C API: 0 success, > 0 a cudaError_t, < 0 one of these.
#define SG2_OK 0
#define SG2_ERROR_ARGUMENT -1  // an argument is outside what the op defines
#define SG2_ERROR_DTYPE -2     // an element type the kernels are not built for
#define SG2_ERROR_TOO_LARGE -3 // a tensor of 2^31 elements or more (the kernels index with int)

namespace stylegan2 {

// Accumulation type: float for float and the 16-bit types, double for double.
template <typename T>
struct Accumulator {
  typedef float type;
};
template <>
struct Accumulator<double> {
  typedef double type;
};

// Integer division rounding towards -infinity (C++ rounds towards zero); b > 0.
SG2_HD int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

SG2_HD int min_int(int a, int b) { return a < b ? a : b; }
SG2_HD int max_int(int a, int b) { return a > b ? a : b; }

}  // namespace stylegan2

#endif  // STYLEGAN2_CUDA_COMMON_H_
