// Runs a plan's CUDA kernels (kernels.cu, f32 storage, i32 ids) on the CPU: every block's threads
// as OS threads, __syncthreads as a block barrier, warp shuffles through a per-warp exchange, and
// the products as plain loops with cuBLAS's column-major semantics. The engine's tests write the
// launches the CUDA executor would make (engine/emulation.rs) and compare the result with the
// plan's CPU executor. Not a CUDA emulator in general: only what kernels.cu uses.
//
//   runner PROGRAM WEIGHTS INPUTS OUTPUT
#include <barrier>
#include <cmath>
#include <math.h>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
static thread_local dim3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;

struct Warp {
    std::barrier<> sync{32};
    float slot[32];
};
static thread_local Warp* this_warp;
static thread_local int this_lane;
static std::barrier<>* this_block;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static

static void __syncthreads() { this_block->arrive_and_wait(); }
static float __shfl_xor_sync(unsigned, float v, int offset) {
    this_warp->slot[this_lane] = v;
    this_warp->sync.arrive_and_wait();
    float other = this_warp->slot[this_lane ^ offset];
    this_warp->sync.arrive_and_wait();
    return other;
}
static float __int_as_float(int bits) {
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}
static float __uint_as_float(unsigned bits) {
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}
// erff, expf, fmaxf, logf, sqrtf, tanhf: the C library's (<math.h> through <cmath>).

#define VQ_ELEM_F32
#define VQ_ID_I32
#include "../kernels.cu"

// Device memory: the arenas and the weights, addressed as the executor's test addresses them
// (region << 40 | weight << 32 | byte offset).
static std::vector<uint8_t> constants, workspace;
static std::vector<std::vector<float>> weights;

static void* translate(uint64_t address) {
    uint64_t region = address >> 40, offset = address & 0xffffffffull;
    switch (region) {
        case 1: return constants.data() + offset;
        case 2: return workspace.data() + offset;
        case 3: return reinterpret_cast<uint8_t*>(weights.at((address >> 32) & 0xff).data()) + offset;
    }
    throw std::runtime_error("bad address");
}

struct Arg {
    char kind;
    uint64_t bits;
};

template <class T>
T convert(const Arg& a) {
    if constexpr (std::is_pointer_v<T>) {
        if (a.kind != 'p') throw std::runtime_error("pointer expected");
        return reinterpret_cast<T>(translate(a.bits));
    } else if constexpr (std::is_same_v<T, int>) {
        if (a.kind != 'i') throw std::runtime_error("int expected");
        return static_cast<int>(static_cast<int64_t>(a.bits));
    } else if constexpr (std::is_same_v<T, long long>) {
        if (a.kind != 'l') throw std::runtime_error("long long expected");
        return static_cast<long long>(a.bits);
    } else {
        static_assert(std::is_same_v<T, float>);
        if (a.kind != 'f') throw std::runtime_error("float expected");
        uint32_t b = static_cast<uint32_t>(a.bits);
        float f;
        std::memcpy(&f, &b, 4);
        return f;
    }
}

template <class... A, size_t... I>
void call(void (*kernel)(A...), const std::vector<Arg>& args, std::index_sequence<I...>) {
    kernel(convert<A>(args[I])...);
}

template <class... A>
void launch(void (*kernel)(A...), dim3 grid, dim3 block, const std::vector<Arg>& args) {
    if (args.size() != sizeof...(A)) throw std::runtime_error("argument count");
    gridDim = grid;
    blockDim = block;
    unsigned threads = block.x * block.y * block.z;
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                std::barrier<> block_sync(threads);
                this_block = &block_sync;
                std::vector<std::unique_ptr<Warp>> warps;
                for (unsigned w = 0; w < (threads + 31) / 32; ++w) warps.push_back(std::make_unique<Warp>());
                std::vector<std::thread> pool;
                for (unsigned t = 0; t < threads; ++t)
                    pool.emplace_back([&, t] {
                        blockIdx = {bx, by, bz};
                        threadIdx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
                        this_warp = warps[t / 32].get();
                        this_lane = t % 32;
                        call(kernel, args, std::index_sequence_for<A...>{});
                    });
                for (auto& thread : pool) thread.join();
            }
}

static void dispatch(const std::string& name, dim3 grid, dim3 block, const std::vector<Arg>& args) {
#define KERNEL(k) \
    if (name == #k) return launch(k, grid, block, args);
    KERNEL(positions) KERNEL(silu) KERNEL(embed) KERNEL(ada_layer_norm) KERNEL(layer_norm) KERNEL(softmax_rows)
    KERNEL(act_gelu) KERNEL(act_gelu_tanh) KERNEL(act_quick_gelu) KERNEL(act_silu) KERNEL(act_geglu)
    KERNEL(act_swiglu) KERNEL(class_log_softmax)
    throw std::runtime_error("unknown kernel " + name);
}

// D = alpha op(A) op(B) + beta D + bias, column-major, as cublasLtMatmul with C = D.
static void gemm(std::istringstream& line) {
    long long m, n, k, batch, ta, tb, lda, ldb, ldd, sa, sb, sd;
    float alpha, beta;
    uint64_t a, b, d, bias;
    line >> m >> n >> k >> batch >> ta >> tb >> lda >> ldb >> ldd >> sa >> sb >> sd >> alpha >> beta >> a >> b >> d >> bias;
    const float* A = static_cast<const float*>(translate(a));
    const float* B = static_cast<const float*>(translate(b));
    float* D = static_cast<float*>(translate(d));
    const float* bias_values = bias ? static_cast<const float*>(translate(bias)) : nullptr;
    for (long long q = 0; q < batch; ++q)
        for (long long j = 0; j < n; ++j)
            for (long long i = 0; i < m; ++i) {
                double sum = 0;
                for (long long p = 0; p < k; ++p) {
                    double x = ta ? A[q * sa + p + i * lda] : A[q * sa + i + p * lda];
                    double y = tb ? B[q * sb + j + p * ldb] : B[q * sb + p + j * ldb];
                    sum += x * y;
                }
                float& out = D[q * sd + i + j * ldd];
                float value = alpha * static_cast<float>(sum);
                if (beta != 0.0f) value += beta * out;
                if (bias_values) value += bias_values[i];
                out = value;
            }
}

static std::vector<uint8_t> read_file(const char* path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: runner PROGRAM WEIGHTS INPUTS OUTPUT\n");
        return 2;
    }
    std::ifstream program(argv[1]);
    std::vector<uint8_t> weight_bytes = read_file(argv[2]), inputs = read_file(argv[3]);
    size_t weight_at = 0;
    std::string text;
    uint64_t output = 0, output_bytes = 0;
    try {
        while (std::getline(program, text)) {
            std::istringstream line(text);
            std::string word;
            line >> word;
            if (word == "arenas") {
                size_t c, w;
                line >> c >> w;
                constants.assign(c, 0xff);
                workspace.assign(w, 0xff);
            } else if (word == "weight") {
                size_t len;
                line >> len;
                weights.emplace_back(len);
                std::memcpy(weights.back().data(), weight_bytes.data() + weight_at, len * 4);
                weight_at += len * 4;
            } else if (word == "input") {
                uint64_t address, from, bytes;
                line >> address >> from >> bytes;
                std::memcpy(translate(address), inputs.data() + from, bytes);
            } else if (word == "kernel") {
                std::string name;
                dim3 grid, block;
                size_t count;
                line >> name >> grid.x >> grid.y >> grid.z >> block.x >> block.y >> block.z >> count;
                std::vector<Arg> args(count);
                for (auto& arg : args) line >> arg.kind >> arg.bits;
                dispatch(name, grid, block, args);
            } else if (word == "gemm") {
                gemm(line);
            } else if (word == "output") {
                line >> output >> output_bytes;
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "runner: %s (at: %s)\n", e.what(), text.c_str());
        return 1;
    }
    std::ofstream out(argv[4], std::ios::binary);
    out.write(static_cast<const char*>(translate(output)), output_bytes);
    return 0;
}
