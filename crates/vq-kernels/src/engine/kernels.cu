// The CUDA engine's kernels (everything of a plan that is not a matrix product), compiled at run
// time by NVRTC. The including program defines the storage types first: VQ_ELEM_F32, VQ_ELEM_F16
// or VQ_ELEM_BF16 for the activations and weights, VQ_ID_I32 or VQ_ID_I64 for the class ids. No
// header is included: half-precision values are stored as 16-bit integers and converted with PTX
// instructions, so that the source compiles with NVRTC's built-in declarations alone.
//
// Each kernel reads in its storage type, computes in f32 and rounds once on store, as the CPU
// executor (engine/host.rs) does. The launch geometry is the plan's (`Kernel::launch`):
// elementwise kernels one thread per output element in blocks of 256; row kernels one block of
// 256 threads per row; the softmax one warp per row, eight rows per block; the class log-softmax
// blocks of 32 columns × 32 threads.

typedef unsigned short u16;

#if defined(VQ_ELEM_F32)
typedef float T;
__device__ __forceinline__ float load(const T* p, long long i) { return p[i]; }
__device__ __forceinline__ void store(T* p, long long i, float v) { p[i] = v; }
#elif defined(VQ_ELEM_F16)
typedef u16 T;
__device__ __forceinline__ float load(const T* p, long long i) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(p[i]));
    return f;
}
__device__ __forceinline__ void store(T* p, long long i, float v) {
    u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
    p[i] = h;
}
#elif defined(VQ_ELEM_BF16)
typedef u16 T;
__device__ __forceinline__ float load(const T* p, long long i) { return __uint_as_float(((unsigned int)p[i]) << 16); }
__device__ __forceinline__ void store(T* p, long long i, float v) {
    u16 h;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(v));
    p[i] = h;
}
#else
#error "define VQ_ELEM_F32, VQ_ELEM_F16 or VQ_ELEM_BF16"
#endif

#if defined(VQ_ID_I64)
typedef long long ID;
#else
typedef int ID;
#endif

__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000); }
__device__ __forceinline__ float nan_f() { return __int_as_float(0x7fffffff); }

__device__ __forceinline__ long long thread_index() { return (long long)blockIdx.x * blockDim.x + threadIdx.x; }

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over a block of 256 threads; every thread gets it. `shared` holds 8 floats.
__device__ float block_sum(float v, float* shared) {
    v = warp_sum(v);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads();  // `shared` may still be read by a previous call
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float total = 0.0f;
    for (int w = 0; w < 8; ++w) total += shared[w];
    return total;
}

__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float gelu_f(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float gelu_tanh_f(float x) {
    return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}

// out[p, j] = height[p / w, j] + width[p % w, j]
extern "C" __global__ void __launch_bounds__(256) positions(const T* height, const T* width, T* out, int grid_width, int pixels, int dim) {
    long long e = thread_index();
    if (e >= (long long)pixels * dim) return;
    int p = (int)(e / dim), j = (int)(e % dim);
    store(out, e, load(height, (long long)(p / grid_width) * dim + j) + load(width, (long long)(p % grid_width) * dim + j));
}

// out = x / (1 + e^(−x))
extern "C" __global__ void __launch_bounds__(256) silu(const T* in, T* out, long long n) {
    long long e = thread_index();
    if (e < n) store(out, e, silu_f(load(in, e)));
}

// out[r, j] = classes[ids[r], j] + positions[r % pixels, j]; an id outside 0..classes gives NaN.
extern "C" __global__ void __launch_bounds__(256) embed(const ID* ids, const T* classes, const T* positions, T* out, long long rows, int pixels,
                                 int dim, long long class_count) {
    long long e = thread_index();
    if (e >= rows * dim) return;
    long long r = e / dim;
    int j = (int)(e % dim);
    long long id = (long long)ids[r];
    float v = nan_f();
    if (id >= 0 && id < class_count) v = load(classes, id * dim + j) + load(positions, (long long)(r % pixels) * dim + j);
    store(out, e, v);
}

// Mean and 1/sqrt(biased variance + eps) of a row, over a block of 256 threads.
__device__ void row_moments(const T* x, int dim, float eps, float* shared, float* mean, float* inv) {
    float s = 0.0f;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) s += load(x, j);
    float m = block_sum(s, shared) / dim;
    float v = 0.0f;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) {
        float c = load(x, j) - m;
        v += c * c;
    }
    *mean = m;
    *inv = 1.0f / sqrtf(block_sum(v, shared) / dim + eps);
}

// out = LayerNorm(x) * (1 + table[t, :dim]) + table[t, dim:], t the timestep of the row's sample.
extern "C" __global__ void __launch_bounds__(256) ada_layer_norm(const T* x, const T* table, const int* timesteps, T* out, int pixels, int dim,
                                          float eps) {
    __shared__ float shared[8];
    long long row = blockIdx.x;
    const T* xr = x + row * dim;
    T* outr = out + row * dim;
    const T* scale = table + (long long)timesteps[row / pixels] * 2 * dim;
    const T* shift = scale + dim;
    float mean, inv;
    row_moments(xr, dim, eps, shared, &mean, &inv);
    for (int j = threadIdx.x; j < dim; j += blockDim.x)
        store(outr, j, (load(xr, j) - mean) * inv * (1.0f + load(scale, j)) + load(shift, j));
}

// out = LayerNorm(x) * gamma + beta
extern "C" __global__ void __launch_bounds__(256) layer_norm(const T* x, const T* gamma, const T* beta, T* out, int dim, float eps) {
    __shared__ float shared[8];
    long long row = blockIdx.x;
    const T* xr = x + row * dim;
    T* outr = out + row * dim;
    float mean, inv;
    row_moments(xr, dim, eps, shared, &mean, &inv);
    for (int j = threadIdx.x; j < dim; j += blockDim.x)
        store(outr, j, (load(xr, j) - mean) * inv * load(gamma, j) + load(beta, j));
}

// Softmax of the first `cols` elements of each row (rows `ld` apart), in place.
extern "C" __global__ void __launch_bounds__(256) softmax_rows(T* scores, long long rows, int cols, int ld) {
    long long row = (long long)blockIdx.x * 8 + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    T* r = scores + row * ld;
    float m = neg_inf();
    for (int j = lane; j < cols; j += 32) m = fmaxf(m, load(r, j));
    m = warp_max(m);
    float s = 0.0f;
    for (int j = lane; j < cols; j += 32) s += expf(load(r, j) - m);
    float inv = 1.0f / warp_sum(s);
    for (int j = lane; j < cols; j += 32) store(r, j, expf(load(r, j) - m) * inv);
}

// Feed-forward activations over [rows, width] (the gated ones read [rows, 2 * width]: value, gate).
#define ELEMENTWISE_ACTIVATION(name, f)                                                          \
    extern "C" __global__ void __launch_bounds__(256) name(const T* in, T* out, long long rows, int width) { \
        long long e = thread_index();                                                           \
        if (e < rows * width) store(out, e, f(load(in, e)));                                     \
    }
__device__ __forceinline__ float quick_gelu_f(float x) { return x / (1.0f + expf(-1.702f * x)); }
ELEMENTWISE_ACTIVATION(act_gelu, gelu_f)
ELEMENTWISE_ACTIVATION(act_gelu_tanh, gelu_tanh_f)
ELEMENTWISE_ACTIVATION(act_quick_gelu, quick_gelu_f)
ELEMENTWISE_ACTIVATION(act_silu, silu_f)

#define GATED_ACTIVATION(name, f)                                                                \
    extern "C" __global__ void __launch_bounds__(256) name(const T* in, T* out, long long rows, int width) { \
        long long e = thread_index();                                                           \
        if (e >= rows * width) return;                                                          \
        long long r = e / width, j = e % width;                                                  \
        store(out, e, load(in, r * 2 * width + j) * f(load(in, r * 2 * width + width + j)));     \
    }
GATED_ACTIVATION(act_geglu, gelu_f)
GATED_ACTIVATION(act_swiglu, silu_f)

// out[b, c, p] = log_softmax over c of (logits[c, b * pixels + p] + bias[c]), in f32. Block
// (32, 32): threadIdx.x picks the column, threadIdx.y a share of the classes.
extern "C" __global__ void __launch_bounds__(1024) class_log_softmax(const T* logits, const T* bias, float* out, int batch, int classes, int pixels) {
    __shared__ float max_of[32][33];
    __shared__ float sum_of[32][33];
    long long columns = (long long)batch * pixels;
    long long col = (long long)blockIdx.x * 32 + threadIdx.x;
    int tx = threadIdx.x, ty = threadIdx.y;
    float m = neg_inf(), s = 0.0f;
    if (col < columns) {
        for (int c = ty; c < classes; c += 32) {
            float x = load(logits, (long long)c * columns + col) + load(bias, c);
            if (x > m) {
                s = s * expf(m - x) + 1.0f;
                m = x;
            } else {
                s += expf(x - m);
            }
        }
    }
    max_of[ty][tx] = m;
    sum_of[ty][tx] = s;
    __syncthreads();
    if (ty == 0) {
        float big = neg_inf();
        for (int i = 0; i < 32; ++i) big = fmaxf(big, max_of[i][tx]);
        float total = 0.0f;
        for (int i = 0; i < 32; ++i) total += sum_of[i][tx] * expf(max_of[i][tx] - big);
        // A NaN logit leaves its share's sum NaN, which the total carries to every class.
        max_of[0][tx] = big;
        sum_of[0][tx] = logf(total);
    }
    __syncthreads();
    if (col >= columns) return;
    float shift = max_of[0][tx] + sum_of[0][tx];
    long long b = col / pixels, p = col % pixels;
    for (int c = ty; c < classes; c += 32)
        out[(b * classes + c) * pixels + p] = load(logits, (long long)c * columns + col) + load(bias, c) - shift;
}
