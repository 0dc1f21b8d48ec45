// What the OpKernels share: the element types of the ops, one-line errors and, in CUDA builds
// (-DGOOGLE_CUDA=1), TensorFlow's CUDA stream, the C API's element type codes and its status as a
// TensorFlow error.
#ifndef STYLEGAN2_OP_UTIL_H_
#define STYLEGAN2_OP_UTIL_H_

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op_kernel.h"

#if GOOGLE_CUDA
#include "cuda/api.h"
#include "xla/stream_executor/stream.h"
#endif

// The element types every op accepts: the attr of the ops, and the kernels registered for it.
#define STYLEGAN2_TYPE_ATTR "T: {half, bfloat16, float, double}"

// REGISTER(DEVICE, IMPL, T) for each type T of STYLEGAN2_TYPE_ATTR: registers the kernels of
// DEVICE (::tensorflow::DEVICE_CPU or DEVICE_GPU) whose computation is the function template IMPL,
// for every element type.
#define STYLEGAN2_REGISTER_FOR_EACH_TYPE(REGISTER, DEVICE, IMPL) \
  REGISTER(DEVICE, IMPL, Eigen::half)                             \
  REGISTER(DEVICE, IMPL, Eigen::bfloat16)                         \
  REGISTER(DEVICE, IMPL, float)                                   \
  REGISTER(DEVICE, IMPL, double)

namespace stylegan2 {

template <typename... Args>
absl::Status InvalidArgument(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

#if GOOGLE_CUDA

// The stream TensorFlow runs this op's device work on (a CUstream, which is a cudaStream_t).
inline cudaStream_t GpuStream(::tensorflow::OpKernelContext* ctx) {
  return static_cast<cudaStream_t>(ctx->op_device_context()->stream()->platform_specific_handle().stream);
}

template <typename T>
struct DtypeCode;
template <>
struct DtypeCode<float> {
  static constexpr int value = SG2_FLOAT32;
};
template <>
struct DtypeCode<Eigen::half> {
  static constexpr int value = SG2_FLOAT16;
};
template <>
struct DtypeCode<Eigen::bfloat16> {
  static constexpr int value = SG2_BFLOAT16;
};
template <>
struct DtypeCode<double> {
  static constexpr int value = SG2_FLOAT64;
};

inline void SetLaunchStatus(::tensorflow::OpKernelContext* ctx, const char* op, int status) {
  if (status != SG2_OK) {
    ctx->SetStatus(absl::InternalError(absl::StrCat(op, " CUDA kernel: ", sg2_error_string(status),
                                                   " (python -m custom_ops.cuda_selftest checks the GPU)")));
  }
}

#endif  // GOOGLE_CUDA

}  // namespace stylegan2

#endif  // STYLEGAN2_OP_UTIL_H_
