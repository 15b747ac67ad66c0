// What fastelu's three C++ files share. They are compiled apart, in parallel, so that the first
// import (which builds them) waits for the slowest one rather than for all three in a row:
//   launch.cpp  the checks, every decision of a launch, the launch, the ops' kernels
//   ops.cpp     which kernel serves which dispatch key, and autograd
//   module.cpp  the Python module: setup, the bindings, and the calls back into Python
// This header includes only ATen's Tensor, so that each file pays for the headers it needs.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include <ATen/core/Tensor.h>

namespace fastelu {

using at::Tensor;

// ---- checks (launch.cpp), all made before anything is written ----------------------------------
struct Coefs {
  double alpha, scale, input_scale;
};

extern const char* const kNegativeSlopeError;
void check_elu(const Tensor& self, const Coefs& c, bool inplace);
void check_backward(const Tensor& grad_output, const Coefs& c, bool is_result, const Tensor& s);

// ---- launch decisions (launch.cpp) --------------------------------------------------------------

struct Config {
  int64_t block = 0, warps = 0;
};

double negcoef(double alpha, double scale, bool float64);
bool normal_math(bool float16, bool backward, bool is_result, const Coefs& c);
int width(int64_t n, int64_t extent, int64_t block);
Config config_for(int64_t device, bool backward, int64_t itemsize, int64_t n);

// elu_kernel's view: up to kDims dimensions, each tensor (out, x, g) with its own strides.
constexpr int kDims = 4;

// What elu_kernel reads of a view: its sizes and strides (elu_kernel's sixteen integers), the
// tile's columns (0: flat arrays), its dimensions, which tensors step by 1 along the columns (along
// the rows, aligned, for the transposed ones), their alignment, and which are read or written along
// the tile's rows (their smallest stride is there).
struct Layout {
  std::array<int64_t, 4 * kDims> params{};  // size0..3, then out's, x's and g's strides
  int64_t block = 0;  // elements a tile
  int64_t cols = 0;
  int dims = 0;
  int unit = 0;
  int align = 1;
  int trans = 0;
  int64_t extent = 0;  // one past the largest offset of any of the tensors
};

// The layout run() gives a launch over out, x and g in tiles of `block` elements; none where they
// are flat arrays, or have more than kDims dimensions (aten's kernel takes those).
std::optional<Layout> view_layout(const Tensor& out, const Tensor& x, const Tensor& g, int64_t block);

// A compiled elu_kernel the C++ launches itself. function == nullptr: one that stays with Triton's
// launcher (it needs scratch memory, clusters, or parameters other than the ones passed).
struct Kernel {
  void* function = nullptr;  // CUfunction
  unsigned threads = 0, shared = 0;
  int extra = 0;  // pointer parameters Triton appends (scratch buffers, unused: passed as null)
  bool n64 = false;  // n is a 64-bit parameter
};
constexpr int kMaxExtra = 8;

// A launch handed to Triton's launcher (launch.py's run()), with every decision made.
struct TritonLaunch {
  const Tensor &out, &x, &g;  // g: undefined for the forward
  double negcoef;
  Coefs coefs;
  bool backward, is_result, normal, unit_input, int64;
  Config config;
  const Layout& layout;
  int64_t grid;
};

// Runs elu_kernel over out, x and g (undefined for the forward); config: the device's table's
// unless given.
void run(const Tensor& out, const Tensor& x, const Tensor& g_or_none, const Coefs& c, bool is_result,
         Config config = {});
void configure(const std::array<int64_t, 3>& bucket_bounds, int moderate);
void forget();

// ---- the ops' kernels (launch.cpp): CUDA tensors (and CPU tensors, interpreted), and aten's
// kernels after the same checks for every other device ----------------------------------------
Tensor elu_kernel(const Tensor& self, double alpha, double scale, double input_scale);
void elu_inplace_kernel(Tensor& self, double alpha, double scale, double input_scale);
Tensor elu_backward_kernel(const Tensor& grad_output, double alpha, double scale, double input_scale, bool is_result,
                           const Tensor& self_or_result);
Tensor elu_aten(const Tensor& self, double alpha, double scale, double input_scale);
void elu_inplace_aten(Tensor& self, double alpha, double scale, double input_scale);
Tensor elu_backward_aten(const Tensor& grad_output, double alpha, double scale, double input_scale, bool is_result,
                         const Tensor& self_or_result);

// ---- ops.cpp ----------------------------------------------------------------------------------
void route_aten(bool on);  // enable(): aten's elu, elu_ and elu_backward on CUDA tensors served by fastelu's kernels
void interpret_cpu(bool on);  // TRITON_INTERPRET=1: CPU tensors run the kernel, interpreted
// The ops through the dispatcher's full path.
Tensor call_elu(const Tensor& self, double alpha, double scale, double input_scale);
void call_elu_(Tensor& self, double alpha, double scale, double input_scale);

// ---- the calls into Python (module.cpp), each taking the GIL -----------------------------------
// configs.table(device): a configuration per direction (forward, backward), element size (2, 4, 8
// bytes) and size bucket.
using Table = std::array<std::array<std::array<Config, 4>, 3>, 2>;
Table python_table(int64_t device);
// launch.py's run(): Triton launches; for CUDA tensors, the compiled kernel comes back for the C++
// to launch from then on (an empty Kernel: Triton's launcher keeps it).
Kernel python_launch(const TritonLaunch& launch);
// True while a profiler hooks Triton's launches; read without the GIL.
bool hooked();

}  // namespace fastelu
