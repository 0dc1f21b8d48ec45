// What the library knows about its CUDA build and the GPUs it finds: the runtime version, status
// messages, and whether a device can run the kernels (compiled code for its architecture, or PTX
// that its driver can compile, and a driver new enough for the runtime).

#include <stdio.h>

#include "api.h"

namespace stylegan2 {

// Built with the same targets as the real kernels, so it has code for a GPU exactly when they do.
__global__ void probe_kernel(int* out) {
  if (out) *out = 1;
}

}  // namespace stylegan2

extern "C" const char* sg2_error_string(int status) {
  switch (status) {
    case SG2_OK: return "no error";
    case SG2_ERROR_ARGUMENT: return "invalid argument";
    case SG2_ERROR_DTYPE: return "unsupported element type";
    case SG2_ERROR_TOO_LARGE: return "tensor too large for the kernels (2^31 elements or more)";
    default: return cudaGetErrorString(static_cast<cudaError_t>(status));
  }
}

extern "C" int sg2_cuda_runtime_version(void) { return CUDART_VERSION; }

extern "C" int sg2_cuda_check_devices(char* message, int size) {
  int driver = 0, previous = 0, count = 0;
  cudaDriverGetVersion(&driver);  // 0 when no driver is installed
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status == cudaSuccess) status = cudaGetDevice(&previous);
  int device = 0;
  cudaDeviceProp prop = {};
  for (; status == cudaSuccess && device < count; ++device) {
    status = cudaGetDeviceProperties(&prop, device);
    if (status == cudaSuccess) status = cudaSetDevice(device);
    cudaFuncAttributes attr;
    if (status == cudaSuccess) status = cudaFuncGetAttributes(&attr, stylegan2::probe_kernel);
    if (status != cudaSuccess) break;
  }
  if (count > 0) cudaSetDevice(previous);
  if (status != cudaSuccess && message && size > 0) {
    char where[384] = "no usable GPU";
    if (device < count) {
      snprintf(where, sizeof(where), "CUDA device %d (%s, compute capability %d.%d)", device, prop.name,
               prop.major, prop.minor);
    }
    char drivers[96] = "no CUDA driver is installed";
    if (driver > 0) {
      snprintf(drivers, sizeof(drivers), "the driver supports CUDA %d.%d", driver / 1000, driver % 1000 / 10);
    }
    snprintf(message, static_cast<size_t>(size), "%s: %s; %s, the library was built with CUDA %d.%d", where,
             cudaGetErrorString(status), drivers, CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
  }
  return static_cast<int>(status);
}
