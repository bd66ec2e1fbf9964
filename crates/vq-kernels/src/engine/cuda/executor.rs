//! Runs a [`Plan`] on a CUDA device: the prologue once, then every forward as one CUDA graph
//! replayed on the engine's stream.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::Mutex;
use std::time::Instant;

use cudarc::driver::sys::{CUdeviceptr, CUevent_flags, CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::{result, CudaGraph};

use super::compile::Kernels;
use super::driver::{device_error, Device, DeviceBuffer};
use super::lt::{Handle, LtGemm, Pointers, WORKSPACE_BYTES};
use crate::engine::description::WeightId;
use crate::engine::launch::{self, arguments, Arg};
use crate::engine::plan::{Op, Operand, Plan, Role, Step};
use crate::engine::{EngineError, StepTime};

/// One step with every pointer resolved.
enum Launch {
    Gemm(LtGemm),
    Kernel { function: cudarc::driver::sys::CUfunction, grid: [u32; 3], block: [u32; 3], args: Vec<Arg> },
}

// SAFETY: CUfunction is a context-level handle (see `Kernels`).
unsafe impl Send for Launch {}
unsafe impl Sync for Launch {}

/// What a forward needs besides the steps.
struct State {
    graph: Option<CudaGraph>,
}

// SAFETY: the graph is only touched under the executor's mutex.
unsafe impl Send for State {}

/// A plan on a device: its arenas, prepared products, loaded kernels and captured forward.
pub(super) struct CudaExecutor {
    plan: Plan,
    forward: Vec<Launch>,
    state: Mutex<State>,
    // Dropped after the launches that use them (fields drop in order).
    lt: Handle,
    kernels: Kernels,
    lt_workspace: DeviceBuffer,
    /// Owned here; the prepared steps hold its addresses.
    _constants: DeviceBuffer,
    workspace: DeviceBuffer,
    device: Device,
    /// How the engine started, for `describe`.
    pub(super) report: String,
}

impl CudaExecutor {
    /// Builds the plan on device `ordinal` with the model's weights at `weights` (device
    /// addresses of tensors in burn's layout, every one of `plan.sizes.expected_weights()`),
    /// copies the text from `text` (device address, the plan's `Text` buffer's bytes), runs the
    /// prologue, and captures the forward. Every address must stay valid while the executor
    /// lives. burn's stream must have finished writing the weights and the text.
    pub(super) fn new(
        plan: Plan,
        ordinal: usize,
        weights: &BTreeMap<WeightId, CUdeviceptr>,
        text: CUdeviceptr,
    ) -> Result<Self, EngineError> {
        let start = Instant::now();
        plan.check(&plan.sizes.expected_weights())?;
        let device = Device::new(ordinal)?;
        device.bind()?;
        let arch = device.compute_capability()?;
        let kernels = Kernels::load(plan.elem, plan.ids, arch)?;
        let lt = Handle::new()?;
        let constants = DeviceBuffer::new(plan.constants_bytes, "engine constants")?;
        let workspace = DeviceBuffer::new(plan.workspace_bytes, "engine workspace")?;
        let lt_workspace = DeviceBuffer::new(WORKSPACE_BYTES, "cuBLASLt workspace")?;
        if let Some((id, _)) = plan.sizes.expected_weights().iter().find(|(id, _)| !weights.contains_key(id)) {
            return Err(EngineError::Description(format!("no device address for weight {id}")));
        }
        let address = |operand| launch::address(&plan, operand, constants.ptr, workspace.ptr, |id| weights[&id]);
        let class_count = plan.sizes.classes + 1;
        let resolve = |steps: &[Step]| -> Result<Vec<Launch>, EngineError> {
            steps
                .iter()
                .map(|step| match &step.op {
                    Op::Gemm(g) => {
                        let pointers = Pointers {
                            a: address(g.a.operand),
                            b: address(g.b.operand),
                            d: address(Operand::Buffer { buffer: g.d.buffer, offset: g.d.offset }),
                            bias: g.bias.map(|id| weights[&id]),
                        };
                        LtGemm::new(&lt, g, plan.elem, pointers, &step.label).map(Launch::Gemm)
                    }
                    Op::Kernel(k) => {
                        let launch = k.launch();
                        Ok(Launch::Kernel {
                            function: kernels.function(k.name())?,
                            grid: launch.grid,
                            block: launch.block,
                            args: arguments(k, address, class_count)?,
                        })
                    }
                })
                .collect()
        };
        let prologue = resolve(&plan.prologue)?;
        let forward = resolve(&plan.forward)?;
        let text_buffer = plan.buffer(plan.buffer_of(Role::Text));
        let text_bytes = text_buffer.bytes();
        let text_at = workspace.ptr + text_buffer.offset as u64;
        let mut executor = Self {
            forward,
            state: Mutex::new(State { graph: None }),
            lt,
            kernels,
            lt_workspace,
            _constants: constants,
            workspace,
            device,
            report: String::new(),
            plan,
        };
        let stream = executor.device.cu_stream();
        // SAFETY: both ranges are device memory of `text_bytes`; burn finished writing the text.
        unsafe { result::memcpy_dtod_async(text_at, text, text_bytes, stream) }
            .map_err(|e| device_error("copying the text", e))?;
        for launch in &prologue {
            executor.launch(launch)?;
        }
        executor.device.synchronize()?;
        drop(prologue);

        // One eager forward on zero ids and timesteps: the libraries' lazy set-up happens
        // outside the capture. Then the capture.
        let (ids, timesteps) = (executor.input(Role::Ids), executor.input(Role::Timesteps));
        // SAFETY: both are workspace ranges of the given sizes.
        unsafe {
            result::memset_d8_async(ids.0, 0, ids.1, stream).map_err(|e| device_error("zeroing the ids", e))?;
            result::memset_d8_async(timesteps.0, 0, timesteps.1, stream)
                .map_err(|e| device_error("zeroing the timesteps", e))?;
        }
        executor.run_forward()?;
        executor.device.synchronize()?;
        let graph = executor.capture();
        let graph_note = match &graph {
            Ok(_) => "forward replayed from one CUDA graph",
            Err(_) => "forward launched step by step (graph capture failed)",
        };
        executor.state.get_mut().unwrap().graph = graph.ok();
        let gemms = executor.forward.iter().filter(|l| matches!(l, Launch::Gemm(_))).count();
        executor.report = format!(
            "CUDA engine, {}, {} products (cuBLASLt) and {} kernels per forward, {graph_note}; {}; \
             {:.1} MB constants, {:.1} MB workspace; built in {:.2} s",
            executor.plan.elem.name(),
            gemms,
            executor.forward.len() - gemms,
            executor.kernels.report,
            executor.plan.constants_bytes as f64 / 1e6,
            executor.plan.workspace_bytes as f64 / 1e6,
            start.elapsed().as_secs_f64()
        );
        Ok(executor)
    }

    /// The plan.
    pub(super) fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Device address and bytes of an input or output buffer.
    fn input(&self, role: Role) -> (CUdeviceptr, usize) {
        let b = self.plan.buffer(self.plan.buffer_of(role));
        (self.workspace.ptr + b.offset as u64, b.bytes())
    }

    fn launch(&self, launch: &Launch) -> Result<(), EngineError> {
        let stream = self.device.cu_stream();
        match launch {
            Launch::Gemm(gemm) => gemm
                .launch(&self.lt, self.lt_workspace.ptr, stream as _)
                .map_err(|e| EngineError::Device(format!("cuBLASLt matmul: {e:?}"))),
            Launch::Kernel { function, grid, block, args } => {
                let mut values: Vec<Arg> = args.clone();
                let mut params: Vec<*mut c_void> = values
                    .iter_mut()
                    .map(|arg| match arg {
                        Arg::Ptr(p) => p as *mut u64 as *mut c_void,
                        Arg::I32(v) => v as *mut i32 as *mut c_void,
                        Arg::I64(v) => v as *mut i64 as *mut c_void,
                        Arg::F32(v) => v as *mut f32 as *mut c_void,
                    })
                    .collect();
                // SAFETY: the arguments match the kernel's signature (checked by a test against
                // kernels.cu); `values` outlives the call, which copies them.
                unsafe {
                    result::launch_kernel(
                        *function,
                        (grid[0], grid[1], grid[2]),
                        (block[0], block[1], block[2]),
                        0,
                        stream,
                        &mut params,
                    )
                }
                .map_err(|e| device_error("kernel launch", e))
            }
        }
    }

    fn run_forward(&self) -> Result<(), EngineError> {
        self.forward.iter().try_for_each(|launch| self.launch(launch))
    }

    /// The forward's launches captured into a graph on the engine's stream.
    fn capture(&self) -> Result<CudaGraph, EngineError> {
        let stream = &self.device.stream;
        stream
            .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(|e| device_error("beginning the capture", e))?;
        let launched = self.run_forward();
        let graph = stream.end_capture(CUgraphInstantiate_flags(0)).map_err(|e| device_error("ending the capture", e));
        launched?;
        let graph = graph?.ok_or_else(|| EngineError::Device("the capture recorded nothing".into()))?;
        graph.upload().map_err(|e| device_error("uploading the graph", e))?;
        Ok(graph)
    }

    /// One forward: copies `batch · n` ids from `ids` (device address, the plan's id type),
    /// the timesteps from the host, runs, and copies the `[batch, K, n]` f32 result to `out`
    /// (device address). Returns when the result is written.
    pub(super) fn forward(&self, ids: CUdeviceptr, timesteps: &[usize], out: CUdeviceptr) -> Result<(), EngineError> {
        let state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let sizes = &self.plan.sizes;
        assert_eq!(timesteps.len(), sizes.batch, "one timestep per sample");
        if let Some(t) = timesteps.iter().find(|&&t| t >= sizes.timesteps) {
            panic!("timestep {t} outside the table of {}", sizes.timesteps);
        }
        let ts: Vec<i32> = timesteps.iter().map(|&t| t as i32).collect();
        self.device.bind()?;
        let stream = self.device.cu_stream();
        let (ids_at, ids_bytes) = self.input(Role::Ids);
        let (ts_at, _) = self.input(Role::Timesteps);
        let (out_at, out_bytes) = self.input(Role::Output);
        // SAFETY: device ranges of the given sizes; `ts` lives until the synchronisation below.
        unsafe {
            result::memcpy_dtod_async(ids_at, ids, ids_bytes, stream)
                .map_err(|e| device_error("copying the ids", e))?;
            result::memcpy_htod_async(ts_at, &ts, stream).map_err(|e| device_error("copying the timesteps", e))?;
        }
        match &state.graph {
            Some(graph) => graph.launch().map_err(|e| device_error("launching the forward graph", e))?,
            None => self.run_forward()?,
        }
        // SAFETY: as above.
        unsafe { result::memcpy_dtod_async(out, out_at, out_bytes, stream) }
            .map_err(|e| device_error("copying the output", e))?;
        self.device.synchronize()
    }
}

impl CudaExecutor {
    /// Every forward step timed alone with CUDA events: the median of `repeats` launches of it,
    /// after one whole forward on the last inputs.
    pub(super) fn profile(&self, repeats: usize) -> Result<Vec<StepTime>, EngineError> {
        let _state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.device.bind()?;
        self.run_forward()?;
        self.device.synchronize()?;
        let timing = Some(CUevent_flags::CU_EVENT_DEFAULT);
        let event = || self.device.context.new_event(timing).map_err(|e| device_error("creating an event", e));
        let (start, end) = (event()?, event()?);
        let stream = &self.device.stream;
        let mut times = Vec::with_capacity(self.forward.len());
        for (step, launch) in self.plan.forward.iter().zip(&self.forward) {
            let mut seconds = Vec::with_capacity(repeats.max(1));
            for _ in 0..repeats.max(1) {
                start.record(stream).map_err(|e| device_error("recording an event", e))?;
                self.launch(launch)?;
                end.record(stream).map_err(|e| device_error("recording an event", e))?;
                let ms = start.elapsed_ms(&end).map_err(|e| device_error("timing a step", e))?;
                seconds.push(f64::from(ms) / 1e3);
            }
            seconds.sort_by(f64::total_cmp);
            let flops = if let Op::Gemm(g) = &step.op { g.flops() } else { 0.0 };
            times.push(StepTime { label: step.label.clone(), flops, seconds: seconds[seconds.len() / 2] });
        }
        Ok(times)
    }
}

impl Drop for CudaExecutor {
    fn drop(&mut self) {
        let _ = self.device.bind();
        let _ = self.device.synchronize();
        self.state.get_mut().map(|state| state.graph.take()).ok();
    }
}
