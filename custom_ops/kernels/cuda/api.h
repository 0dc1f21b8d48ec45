// The C API of the CUDA kernels: raw device pointers, shapes and a stream, no TensorFlow. The TF
// GPU kernels (custom_ops/kernels/*_gpu.cc) call it with TensorFlow's stream, and
// custom_ops/cuda_selftest.py calls it through ctypes on a machine without TensorFlow.
//
// Every function returns SG2_OK (0), a cudaError_t (> 0) or an SG2_ERROR_* code (< 0); the
// launches are asynchronous on `stream`, as any kernel launch.
#ifndef STYLEGAN2_CUDA_API_H_
#define STYLEGAN2_CUDA_API_H_

#include <cuda_runtime_api.h>

#include "bias_act.h"
#include "upfirdn2d.h"

extern "C" {

// y = upfirdn2d(x, f); x, f, y in device memory, `dtype` (SG2_FLOAT32 ...) for x and y.
int sg2_upfirdn2d(const sg2_upfirdn2d_args* args, int dtype, const void* x, const float* f, void* y,
                  cudaStream_t stream);

// y = bias_act in mode args->grad (see bias_act.h); b, xref, yref, dy may be null where the mode
// does not read them.
int sg2_bias_act(const sg2_bias_act_args* args, int dtype, const void* x, const void* b, const void* xref,
                 const void* yref, const void* dy, void* y, cudaStream_t stream);

// A one-line description of a status code.
const char* sg2_error_string(int status);

// The CUDA runtime version the library was built with (CUDART_VERSION, e.g. 13000).
int sg2_cuda_runtime_version(void);

// SG2_OK if the kernels can run on every visible CUDA device; otherwise writes the reason (the
// device, its compute capability, the driver's and the library's CUDA versions) to `message`
// (`size` bytes) and returns the error. This finds a GPU without code in the library (no SASS
// for it and no PTX its driver can compile), a driver older than the runtime, or no GPU at all.
int sg2_cuda_check_devices(char* message, int size);

}  // extern "C"

#endif  // STYLEGAN2_CUDA_API_H_
