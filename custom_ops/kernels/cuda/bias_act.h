// bias_act: the arguments of the C API and the per-element arithmetic, written once for the CUDA
// kernel, the CPU kernels (custom_ops/kernels/bias_act_op.cc) and the host emulation.
//
// Three modes, as in NVIDIA's bias_act (stylegan2-ada-pytorch torch_utils/ops/bias_act.cu):
//   grad 0 (forward):  y   = clamp(act(x + b) * gain)
//   grad 1 (gradient): dx  = g * act'(t) * gain * [|y| < clamp]               (g = dL/dy)
//   grad 2 (2nd order): d_t = g * dy * act''(t) * gain * [|y| < clamp]        (g = dL/d(dx))
// with t = x + b the forward input plus bias. Mode 2 is the derivative of mode 1 with respect to
// t, which GradientTape needs to differentiate a gradient (R1, path length). The derivatives are
// read from the forward output y (y / gain = act(t)) except for swish, which reads t itself.
#ifndef STYLEGAN2_CUDA_BIAS_ACT_H_
#define STYLEGAN2_CUDA_BIAS_ACT_H_

#include <math.h>

#include <type_traits>

#include "common.h"

// Activation numbers of the C API (NVIDIA's numbering).
#define SG2_ACT_LINEAR 1
#define SG2_ACT_RELU 2
#define SG2_ACT_LRELU 3
#define SG2_ACT_TANH 4
#define SG2_ACT_SIGMOID 5
#define SG2_ACT_ELU 6
#define SG2_ACT_SELU 7
#define SG2_ACT_SOFTPLUS 8
#define SG2_ACT_SWISH 9

// Element i reads bias b[(i / step_b) % size_b]: step_b = 1 for channels last (NHWC), the product
// of the trailing dimensions otherwise. size_b = 0: no bias. Plain C layout (mirrored by ctypes).
struct sg2_bias_act_args {
  int32_t size;  // elements
  int32_t size_b, step_b;
  int32_t act;   // SG2_ACT_*
  int32_t grad;  // 0, 1 or 2
  float alpha, gain, clamp;  // clamp < 0: none
};

namespace stylegan2 {

// SG2_OK when the kernels can run `p` with these inputs (null: not given), else the reason.
inline int bias_act_check(const sg2_bias_act_args& p, const void* x, const void* b, const void* xref,
                          const void* yref, const void* dy, const void* y) {
  if (p.size < 0 || p.act < SG2_ACT_LINEAR || p.act > SG2_ACT_SWISH || p.grad < 0 || p.grad > 2) {
    return SG2_ERROR_ARGUMENT;
  }
  if (p.size == 0) return SG2_OK;
  if (!x || !y || (b && (p.size_b < 1 || p.step_b < 1))) return SG2_ERROR_ARGUMENT;
  // Gradients read the forward output (derivative, clamp); swish's read the forward input.
  if (p.grad > 0 && (!yref || (p.act == SG2_ACT_SWISH && !xref))) return SG2_ERROR_ARGUMENT;
  if (p.grad == 2 && !dy) return SG2_ERROR_ARGUMENT;
  return SG2_OK;
}

SG2_HD float ba_exp(float v) { return expf(v); }
SG2_HD double ba_exp(double v) { return exp(v); }
SG2_HD float ba_expm1(float v) { return expm1f(v); }
SG2_HD double ba_expm1(double v) { return expm1(v); }
SG2_HD float ba_log1p(float v) { return log1pf(v); }
SG2_HD double ba_log1p(double v) { return log1p(v); }
SG2_HD float ba_tanh(float v) { return tanhf(v); }
SG2_HD double ba_tanh(double v) { return tanh(v); }

// SELU's constants (Klambauer et al. 2017).
#define SG2_SELU_SCALE 1.0507009873554804934193349852946
#define SG2_SELU_ALPHA 1.6732632423543772848170429916717

template <typename A>
SG2_HD A ba_sigmoid(A t) {
  return A(1) / (A(1) + ba_exp(-t));
}

template <int Act, typename A>
SG2_HD A act_forward(A t, A alpha) {
  switch (Act) {
    case SG2_ACT_RELU: return t > A(0) ? t : A(0);
    case SG2_ACT_LRELU: return t > A(0) ? t : t * alpha;
    case SG2_ACT_TANH: return ba_tanh(t);
    case SG2_ACT_SIGMOID: return ba_sigmoid(t);
    case SG2_ACT_ELU: return t >= A(0) ? t : ba_expm1(t);
    case SG2_ACT_SELU: return A(SG2_SELU_SCALE) * (t >= A(0) ? t : A(SG2_SELU_ALPHA) * ba_expm1(t));
    case SG2_ACT_SOFTPLUS: return (t > A(0) ? t : A(0)) + ba_log1p(ba_exp(-(t > A(0) ? t : -t)));
    case SG2_ACT_SWISH: return t * ba_sigmoid(t);
    default: return t;
  }
}

// act'(t) (order 1) or act''(t) (order 2), from f = act(t) or, for swish, from t.
template <int Act, typename A>
SG2_HD A act_derivative(int order, A f, A t, A alpha) {
  const A one = A(1), two = A(2);
  switch (Act) {
    case SG2_ACT_LINEAR: return order == 1 ? one : A(0);
    case SG2_ACT_RELU: return order == 1 && f > A(0) ? one : A(0);
    case SG2_ACT_LRELU: return order == 1 ? (f > A(0) ? one : alpha) : A(0);
    case SG2_ACT_TANH: return order == 1 ? one - f * f : -two * f * (one - f * f);
    case SG2_ACT_SIGMOID: return order == 1 ? f * (one - f) : f * (one - f) * (one - two * f);
    case SG2_ACT_ELU: return f >= A(0) ? (order == 1 ? one : A(0)) : f + one;
    case SG2_ACT_SELU:
      return f >= A(0) ? (order == 1 ? A(SG2_SELU_SCALE) : A(0)) : f + A(SG2_SELU_SCALE * SG2_SELU_ALPHA);
    case SG2_ACT_SOFTPLUS: {
      const A e = ba_exp(-f);  // 1 - sigmoid(t)
      return order == 1 ? one - e : e * (one - e);
    }
    case SG2_ACT_SWISH: {
      const A s = ba_sigmoid(t);
      return order == 1 ? s * (one + t * (one - s)) : s * (one - s) * (two + t * (one - two * s));
    }
    default: return A(0);
  }
}

// One element. x: the forward input (grad 0), dL/dy (grad 1) or dL/d(dx) (grad 2); b: its bias;
// xref: the forward input (read by swish's gradients); yref: the forward output (gradients);
// dy: dL/dy of the first-order gradient (grad 2).
// `grad` is p.grad, passed apart so that a caller with a compile-time mode (the CPU kernels) lets
// the compiler drop the other modes.
template <int Act, typename A>
SG2_HD A bias_act_value(const sg2_bias_act_args& p, int grad, A x, A b, A xref, A yref, A dy) {
  const A gain = A(p.gain), clamp = A(p.clamp), alpha = A(p.alpha);
  if (grad == 0) {
    const A y = act_forward<Act>(x + b, alpha) * gain;
    if (p.clamp < 0.f) return y;
    return y > clamp ? clamp : (y < -clamp ? -clamp : y);  // NaN stays NaN
  }
  if (p.clamp >= 0.f && !(yref > -clamp && yref < clamp)) return A(0);  // clamped: no gradient
  const A f = gain != A(0) ? yref / gain : A(0);
  const A d = act_derivative<Act>(grad, f, xref + b, alpha);
  return x * d * gain * (grad == 2 ? dy : A(1));
}

// Element `index` of the output, loading what the mode needs (null pointers read as zero).
template <int Act, typename T>
SG2_HD typename Accumulator<T>::type bias_act_element(const sg2_bias_act_args& p, const T* x, const T* b,
                                                      const T* xref, const T* yref, const T* dy, int index) {
  typedef typename Accumulator<T>::type A;
  const A bias = b ? static_cast<A>(b[(index / p.step_b) % p.size_b]) : A(0);
  return bias_act_value<Act, A>(p, p.grad, static_cast<A>(x[index]), bias, xref ? static_cast<A>(xref[index]) : A(0),
                                yref ? static_cast<A>(yref[index]) : A(0), dy ? static_cast<A>(dy[index]) : A(0));
}

// Calls fn(std::integral_constant<int, Act>()) for the run-time activation `act` (host code), so
// that each activation gets a kernel of its own.
template <typename Fn>
inline int dispatch_act(int act, Fn&& fn) {
  switch (act) {
    case SG2_ACT_LINEAR: return fn(std::integral_constant<int, SG2_ACT_LINEAR>());
    case SG2_ACT_RELU: return fn(std::integral_constant<int, SG2_ACT_RELU>());
    case SG2_ACT_LRELU: return fn(std::integral_constant<int, SG2_ACT_LRELU>());
    case SG2_ACT_TANH: return fn(std::integral_constant<int, SG2_ACT_TANH>());
    case SG2_ACT_SIGMOID: return fn(std::integral_constant<int, SG2_ACT_SIGMOID>());
    case SG2_ACT_ELU: return fn(std::integral_constant<int, SG2_ACT_ELU>());
    case SG2_ACT_SELU: return fn(std::integral_constant<int, SG2_ACT_SELU>());
    case SG2_ACT_SOFTPLUS: return fn(std::integral_constant<int, SG2_ACT_SOFTPLUS>());
    case SG2_ACT_SWISH: return fn(std::integral_constant<int, SG2_ACT_SWISH>());
    default: return SG2_ERROR_ARGUMENT;
  }
}

}  // namespace stylegan2

#endif  // STYLEGAN2_CUDA_BIAS_ACT_H_
