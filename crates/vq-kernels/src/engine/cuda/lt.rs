//! The plan's matrix products through cuBLASLt: one descriptor, three layouts and a heuristic's
//! algorithm per product, made once when the engine is built; a launch is then one
//! `cublasLtMatmul` call with no allocation (capturable into a CUDA graph).

use std::ffi::c_void;
use std::mem::size_of;

use cudarc::cublaslt::{result, sys};
use cudarc::driver::sys::CUdeviceptr;

use super::driver::alignment;
use crate::engine::plan::{Elem, Gemm};
use crate::engine::EngineError;

/// Bytes of the cuBLASLt workspace every product may use (cuBLASLt's own choice for Hopper).
pub(super) const WORKSPACE_BYTES: usize = 32 << 20;

fn lt_error(what: &str, label: &str, error: result::CublasError) -> EngineError {
    EngineError::Device(format!("cuBLASLt {what} for `{label}`: {error:?}"))
}

/// A cuBLASLt handle.
pub(super) struct Handle(pub(super) sys::cublasLtHandle_t);

// SAFETY: a cuBLASLt handle may be used from any thread as long as calls are not concurrent;
// the engine serialises its launches.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

impl Handle {
    pub(super) fn new() -> Result<Self, EngineError> {
        // SAFETY: only tries to open the library (cudarc panics on a call into a missing one).
        if !unsafe { sys::is_culib_present() } {
            return Err(EngineError::Unavailable(
                "cuBLASLt (libcublasLt.so) was not found: add its folder to LD_LIBRARY_PATH".into(),
            ));
        }
        result::create_handle().map(Self).map_err(|e| EngineError::Device(format!("creating a cuBLASLt handle: {e:?}")))
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: destroyed once, after the engine's last product.
        let _ = unsafe { result::destroy_handle(self.0) };
    }
}

fn data_type(elem: Elem) -> sys::cudaDataType {
    match elem {
        Elem::F16 => sys::cudaDataType::CUDA_R_16F,
        Elem::BF16 => sys::cudaDataType::CUDA_R_16BF,
        _ => sys::cudaDataType::CUDA_R_32F,
    }
}

/// The device addresses of one product's operands.
pub(super) struct Pointers {
    pub(super) a: CUdeviceptr,
    pub(super) b: CUdeviceptr,
    pub(super) d: CUdeviceptr,
    pub(super) bias: Option<CUdeviceptr>,
}

/// One prepared product.
pub(super) struct LtGemm {
    desc: sys::cublasLtMatmulDesc_t,
    layouts: [sys::cublasLtMatrixLayout_t; 3],
    algo: sys::cublasLtMatmulAlgo_t,
    pointers: Pointers,
    alpha: f32,
    beta: f32,
}

// SAFETY: descriptors are plain host objects owned by this value; see `Handle`.
unsafe impl Send for LtGemm {}
unsafe impl Sync for LtGemm {}

/// Sets one attribute of a descriptor from a plain value.
unsafe fn set_desc<T>(
    desc: sys::cublasLtMatmulDesc_t,
    attr: sys::cublasLtMatmulDescAttributes_t,
    value: &T,
) -> Result<(), result::CublasError> {
    result::set_matmul_desc_attribute(desc, attr, value as *const T as *const c_void, size_of::<T>())
}

unsafe fn set_layout<T>(
    layout: sys::cublasLtMatrixLayout_t,
    attr: sys::cublasLtMatrixLayoutAttribute_t,
    value: &T,
) -> Result<(), result::CublasError> {
    result::set_matrix_layout_attribute(layout, attr, value as *const T as *const c_void, size_of::<T>())
}

unsafe fn set_pref<T>(
    pref: sys::cublasLtMatmulPreference_t,
    attr: sys::cublasLtMatmulPreferenceAttributes_t,
    value: &T,
) -> Result<(), result::CublasError> {
    result::set_matmul_pref_attribute(pref, attr, value as *const T as *const c_void, size_of::<T>())
}

impl LtGemm {
    /// Prepares `gemm` on operands of type `elem` at `pointers`: descriptor, layouts and the
    /// heuristic's first algorithm for these alignments and at most [`WORKSPACE_BYTES`].
    pub(super) fn new(
        handle: &Handle,
        gemm: &Gemm,
        elem: Elem,
        pointers: Pointers,
        label: &str,
    ) -> Result<Self, EngineError> {
        let ty = data_type(elem);
        let size = elem.size() as u64;
        let mut prepared = Self {
            desc: std::ptr::null_mut(),
            layouts: [std::ptr::null_mut(); 3],
            algo: sys::cublasLtMatmulAlgo_t { data: [0; 8] },
            pointers,
            alpha: gemm.alpha,
            beta: gemm.beta,
        };
        // f32 accumulation and scalars whatever the storage type.
        prepared.desc =
            result::create_matmul_desc(sys::cublasComputeType_t::CUBLAS_COMPUTE_32F, sys::cudaDataType::CUDA_R_32F)
                .map_err(|e| lt_error("descriptor", label, e))?;
        let (a_rows, a_cols) = gemm.a_stored();
        let (b_rows, b_cols) = gemm.b_stored();
        let shapes = [
            (a_rows, a_cols, gemm.a.ld, gemm.a.stride),
            (b_rows, b_cols, gemm.b.ld, gemm.b.stride),
            (gemm.m, gemm.n, gemm.d.ld, gemm.d.stride),
        ];
        for (layout, (rows, cols, ld, stride)) in prepared.layouts.iter_mut().zip(shapes) {
            *layout = result::create_matrix_layout(ty, rows as u64, cols as u64, ld as i64)
                .map_err(|e| lt_error("layout", label, e))?;
            if gemm.batch > 1 {
                let count = i32::try_from(gemm.batch)
                    .map_err(|_| EngineError::Plan(format!("{label}: batch {}", gemm.batch)))?;
                // SAFETY: the layout was just created; the values outlive the calls.
                unsafe {
                    set_layout(
                        *layout,
                        sys::cublasLtMatrixLayoutAttribute_t::CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                        &count,
                    )
                    .and_then(|()| {
                        set_layout(
                            *layout,
                            sys::cublasLtMatrixLayoutAttribute_t::CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                            &(stride as i64),
                        )
                    })
                    .map_err(|e| lt_error("batch layout", label, e))?;
                }
            }
        }
        let (transa, transb) = (i32::from(gemm.a.transpose), i32::from(gemm.b.transpose));
        // SAFETY: the descriptor was just created; the values outlive the calls.
        unsafe {
            set_desc(prepared.desc, sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSA, &transa)
                .and_then(|()| {
                    set_desc(prepared.desc, sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSB, &transb)
                })
                .map_err(|e| lt_error("transposes", label, e))?;
            if let Some(bias) = prepared.pointers.bias {
                let epilogue = sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_BIAS;
                set_desc(prepared.desc, sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue)
                    .and_then(|()| {
                        set_desc(
                            prepared.desc,
                            sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                            &bias,
                        )
                    })
                    .map_err(|e| lt_error("bias epilogue", label, e))?;
            }
        }

        // The alignments the algorithm may assume: of each base address, and of every matrix
        // of a batch.
        let strided = |ptr: u64, stride: usize| {
            let step = if gemm.batch > 1 { stride as u64 * size } else { 0 };
            alignment([ptr, step])
        };
        let p = &prepared.pointers;
        let aligns = [
            strided(p.a, gemm.a.stride),
            strided(p.b, gemm.b.stride),
            strided(p.d, gemm.d.stride),
            strided(p.d, gemm.d.stride),
        ];
        let pref = result::create_matmul_pref().map_err(|e| lt_error("preference", label, e))?;
        // SAFETY: `pref` is destroyed below whatever happens; the layouts and descriptor are live.
        let heuristic = unsafe {
            let attrs = [
                sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
            ];
            let mut set = set_pref(
                pref,
                sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                &(WORKSPACE_BYTES as u64),
            );
            for (attr, align) in attrs.into_iter().zip(aligns) {
                set = set.and_then(|()| set_pref(pref, attr, &align));
            }
            let [a, b, d] = prepared.layouts;
            let heuristic =
                set.and_then(|()| result::get_matmul_algo_heuristic(handle.0, prepared.desc, a, b, d, d, pref));
            let _ = result::destroy_matmul_pref(pref);
            heuristic
        };
        let heuristic = heuristic.map_err(|e| lt_error("algorithm heuristic", label, e))?;
        prepared.algo = heuristic.algo;
        Ok(prepared)
    }

    /// Queues the product on `stream` with the workspace at `workspace`.
    pub(super) fn launch(
        &self,
        handle: &Handle,
        workspace: CUdeviceptr,
        stream: sys::cudaStream_t,
    ) -> Result<(), result::CublasError> {
        let [a, b, d] = self.layouts;
        let p = &self.pointers;
        // SAFETY: every object was prepared for these pointers; the workspace has
        // WORKSPACE_BYTES; C and D are the same matrix with the same layout.
        unsafe {
            result::matmul(
                handle.0,
                self.desc,
                &self.alpha as *const f32 as *const c_void,
                &self.beta as *const f32 as *const c_void,
                p.a as *const c_void,
                a,
                p.b as *const c_void,
                b,
                p.d as *const c_void,
                d,
                p.d as *mut c_void,
                d,
                &self.algo,
                workspace as *mut c_void,
                WORKSPACE_BYTES,
                stream,
            )
        }
    }
}

impl Drop for LtGemm {
    fn drop(&mut self) {
        // SAFETY: each object is destroyed once (null ones were never created).
        unsafe {
            for layout in self.layouts {
                if !layout.is_null() {
                    let _ = result::destroy_matrix_layout(layout);
                }
            }
            if !self.desc.is_null() {
                let _ = result::destroy_matmul_desc(self.desc);
            }
        }
    }
}
