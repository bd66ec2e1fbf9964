//! A bounded reader for the pickles `torch.save` writes (`data.pkl` of a PyTorch archive).
//!
//! Nothing is executed: the reader is a small stack machine for the opcodes of pickle
//! protocols 2–5 that a saved `state_dict` uses, and a `GLOBAL` is only understood if it is
//! one of a fixed list (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
//! `torch._utils._rebuild_tensor`, `torch._utils._rebuild_parameter`, the `torch.*Storage`
//! classes); any other global or opcode is an error that names it.
//!
//! Every resource is bounded, whatever the bytes say:
//! - values are shared, not copied: `BINGET` of a large list pushes a reference, so memory is
//!   proportional to the opcodes executed, and those are capped ([`MAX_VALUES`]);
//! - nesting is capped ([`MAX_DEPTH`]) when a container is built or filled, so no deep
//!   structure exists to overflow the stack when it is dropped or walked;
//! - a list or dict that has been put inside another container can no longer be filled, and a
//!   container never goes into itself: no cycles, so depths stay exact;
//! - the memo and the stack are capped, memo indices are looked up in a map (a 4-byte
//!   `LONG_BINPUT` index allocates nothing), and every length prefix is checked against the
//!   bytes that remain before anything is read.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use crate::Dtype;

/// Deepest nesting of tuples, lists and dicts (a state dict needs 4).
pub const MAX_DEPTH: usize = 100;
/// Most values the reader creates or references (each opcode creates at most one).
pub const MAX_VALUES: usize = 1 << 23;
/// Most memo entries.
pub const MAX_MEMO: usize = 1 << 22;
/// Longest `GLOBAL` module or name.
const MAX_GLOBAL_NAME: usize = 256;

/// A Python value as far as this reader understands it.
#[derive(Clone, Debug)]
pub(super) enum Value {
    None,
    Bool,
    Int(i64),
    Float,
    Str(Rc<str>),
    Bytes,
    Tuple(Rc<Tuple>),
    List(Rc<List>),
    Dict(Rc<Dict>),
    Global(Global),
    Storage(Rc<Storage>),
    Tensor(Rc<TensorRef>),
}

/// An immutable tuple and its nesting depth.
#[derive(Debug)]
pub(super) struct Tuple {
    pub items: Vec<Value>,
    depth: usize,
}

/// A list's items.
pub(super) type List = Container<Vec<Value>>;
/// A dict's entries, in insertion order.
pub(super) type Dict = Container<Vec<(Value, Value)>>;

/// A list or dict: filled while it is on the stack, frozen once inside another container.
#[derive(Debug)]
pub(super) struct Container<T> {
    pub items: RefCell<T>,
    depth: Cell<usize>,
    frozen: Cell<bool>,
}

impl<T: Default> Container<T> {
    fn new() -> Rc<Self> {
        Rc::new(Self { items: RefCell::new(T::default()), depth: Cell::new(1), frozen: Cell::new(false) })
    }
}

/// The globals this reader understands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildTensor,
    RebuildParameter,
    StorageType(Dtype),
}

/// A storage reference from `BINPERSID`: `('storage', torch.FloatStorage, key, location, numel)`.
#[derive(Debug, PartialEq)]
pub(super) struct Storage {
    pub key: Rc<str>,
    pub dtype: Dtype,
    pub numel: u64,
}

/// A tensor from `_rebuild_tensor_v2(storage, storage_offset, size, stride, …)`.
#[derive(Debug)]
pub(super) struct TensorRef {
    pub storage: Rc<Storage>,
    pub offset: u64,
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
}

impl Value {
    fn depth(&self) -> usize {
        match self {
            Self::Tuple(t) => t.depth,
            Self::List(l) => l.depth.get(),
            Self::Dict(d) => d.depth.get(),
            _ => 0,
        }
    }

    /// Marks a list or dict as part of another container: it can no longer be filled.
    fn freeze(&self) {
        match self {
            Self::List(l) => l.frozen.set(true),
            Self::Dict(d) => d.frozen.set(true),
            _ => {}
        }
    }

    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Bool => "bool",
            Self::Int(_) => "int",
            Self::Float => "float",
            Self::Str(_) => "str",
            Self::Bytes => "bytes",
            Self::Tuple(_) => "tuple",
            Self::List(_) => "list",
            Self::Dict(_) => "dict",
            Self::Global(_) => "global",
            Self::Storage(_) => "storage",
            Self::Tensor(_) => "tensor",
        }
    }
}

/// Runs a pickle and returns the value `STOP` leaves.
pub(super) fn read(data: &[u8]) -> Result<Value, String> {
    Machine::new(data).run()
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    storages: HashMap<Rc<str>, Rc<Storage>>,
    values: usize,
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            storages: HashMap::new(),
            values: 0,
        }
    }

    fn run(mut self) -> Result<Value, String> {
        loop {
            let at = self.pos;
            let op = self.byte().map_err(|_| "the pickle ends without a STOP opcode".to_string())?;
            match self.step(op) {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(e) => return Err(format!("pickle byte {at} (opcode {}): {e}", describe(op))),
            }
        }
    }

    /// Executes one opcode; `Some` when it was `STOP`.
    fn step(&mut self, op: u8) -> Result<Option<Value>, String> {
        match op {
            // PROTO
            0x80 => {
                let version = self.byte()?;
                if !(2..=5).contains(&version) {
                    return Err(format!("protocol {version} (torch writes 2 to 5)"));
                }
            }
            // FRAME: a length hint of protocol 4+, checked and ignored.
            0x95 => {
                let len = self.u64()?;
                if len > (self.data.len() - self.pos) as u64 {
                    return Err(format!("frame of {len} bytes is longer than the rest of the pickle"));
                }
            }
            b'.' => return self.pop().map(Some),
            b'(' => {
                self.count()?;
                self.marks.push(self.stack.len());
            }
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.top()?.clone();
                self.push(top)?;
            }
            b'N' => self.push(Value::None)?,
            0x88 | 0x89 => self.push(Value::Bool)?,
            b'J' => {
                let v = i32::from_le_bytes(self.array()?);
                self.push(Value::Int(v.into()))?;
            }
            b'K' => {
                let v = self.byte()?;
                self.push(Value::Int(v.into()))?;
            }
            b'M' => {
                let v = u16::from_le_bytes(self.array()?);
                self.push(Value::Int(v.into()))?;
            }
            // LONG1, LONG4: little-endian two's complement of n bytes.
            0x8a | 0x8b => {
                let n = match op {
                    0x8a => usize::from(self.byte()?),
                    _ => {
                        let n = i32::from_le_bytes(self.array()?);
                        usize::try_from(n).map_err(|_| format!("negative length {n}"))?
                    }
                };
                let bytes = self.take(n)?;
                let v = long(bytes).ok_or_else(|| format!("an integer of {n} bytes does not fit in 64 bits"))?;
                self.push(Value::Int(v))?;
            }
            b'G' => {
                self.take(8)?;
                self.push(Value::Float)?;
            }
            // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
            b'X' | 0x8c | 0x8d => {
                let n = self.length(op)?;
                let bytes = self.take(n)?;
                let s = std::str::from_utf8(bytes).map_err(|_| "a string is not valid UTF-8".to_string())?;
                self.push(Value::Str(s.into()))?;
            }
            // BINBYTES, SHORT_BINBYTES, BINBYTES8
            b'B' | b'C' | 0x8e => {
                let n = self.length(op)?;
                self.take(n)?;
                self.push(Value::Bytes)?;
            }
            b')' => self.push_tuple(Vec::new())?,
            b't' => {
                let items = self.pop_mark()?;
                self.push_tuple(items)?;
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if self.stack.len() < n + self.floor() {
                    return Err(format!("TUPLE{n} needs {n} values on the stack"));
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.push_tuple(items)?;
            }
            b']' => self.push(Value::List(Container::new()))?,
            b'l' => {
                let items = self.pop_mark()?;
                let list = Container::new();
                fill_list(&list, items)?;
                self.push(Value::List(list))?;
            }
            b'a' => {
                let item = self.pop()?;
                let list = self.top_list()?;
                fill_list(&list, vec![item])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                let list = self.top_list()?;
                fill_list(&list, items)?;
            }
            b'}' => self.push(Value::Dict(Container::new()))?,
            b'd' => {
                let items = self.pop_mark()?;
                let dict = Container::new();
                fill_dict(&dict, items)?;
                self.push(Value::Dict(dict))?;
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                let dict = self.top_dict()?;
                fill_dict(&dict, vec![key, value])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                let dict = self.top_dict()?;
                fill_dict(&dict, items)?;
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                let global = resolve_global(module, name)?;
                self.push(Value::Global(global))?;
            }
            // STACK_GLOBAL
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Value::Str(module), Value::Str(name)) = (module, name) else {
                    return Err("STACK_GLOBAL needs two strings".into());
                };
                let global = resolve_global(&module, &name)?;
                self.push(Value::Global(global))?;
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let value = self.reduce(callable, args)?;
                self.push(value)?;
            }
            b'b' => {
                let _state = self.pop()?;
                // An OrderedDict's instance attributes (`_metadata`): not needed.
                match self.top()? {
                    Value::Dict(_) => {}
                    other => {
                        return Err(format!("BUILD on a {}, only a dict's attributes are accepted", other.type_name()))
                    }
                }
            }
            b'Q' => {
                let pid = self.pop()?;
                let storage = self.persistent_load(pid)?;
                self.push(Value::Storage(storage))?;
            }
            b'q' => {
                let index = self.byte()?;
                self.memoize(index.into())?;
            }
            b'r' => {
                let index = u32::from_le_bytes(self.array()?);
                self.memoize(index)?;
            }
            0x94 => {
                let index = u32::try_from(self.memo.len()).map_err(|_| "memo too large".to_string())?;
                self.memoize(index)?;
            }
            b'h' | b'j' => {
                let index = match op {
                    b'h' => self.byte()?.into(),
                    _ => u32::from_le_bytes(self.array()?),
                };
                let value = self.memo.get(&index).cloned().ok_or_else(|| format!("memo entry {index} is not set"))?;
                self.push(value)?;
            }
            _ => return Err("unsupported opcode (torch.save does not write it)".into()),
        }
        Ok(None)
    }

    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.data.get(self.pos).ok_or_else(|| "the pickle is truncated".to_string())?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let rest = self.data.len() - self.pos;
        if n > rest {
            return Err(format!("a length of {n} bytes runs past the end of the pickle ({rest} bytes left)"));
        }
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// The length prefix of a string or bytes opcode.
    fn length(&mut self, op: u8) -> Result<usize, String> {
        let n = match op {
            0x8c | b'C' => u64::from(self.byte()?),
            b'X' | b'B' => u64::from(u32::from_le_bytes(self.array()?)),
            _ => self.u64()?,
        };
        usize::try_from(n).map_err(|_| format!("length {n} does not fit in memory"))
    }

    /// A `GLOBAL` argument: ASCII up to a newline.
    fn line(&mut self) -> Result<&'a str, String> {
        let rest = &self.data[self.pos..];
        let limit = rest.len().min(MAX_GLOBAL_NAME + 1);
        let end = rest[..limit]
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| "a GLOBAL name is unterminated or too long".to_string())?;
        let line = std::str::from_utf8(&rest[..end]).map_err(|_| "a GLOBAL name is not UTF-8".to_string())?;
        self.pos += end + 1;
        Ok(line)
    }

    fn push(&mut self, value: Value) -> Result<(), String> {
        self.count()?;
        self.stack.push(value);
        Ok(())
    }

    /// Counts one more value (or mark) against [`MAX_VALUES`].
    fn count(&mut self) -> Result<(), String> {
        self.values += 1;
        match self.values > MAX_VALUES {
            true => Err(format!("more than {MAX_VALUES} values")),
            false => Ok(()),
        }
    }

    fn push_tuple(&mut self, items: Vec<Value>) -> Result<(), String> {
        let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
        check_depth(depth)?;
        items.iter().for_each(Value::freeze);
        self.push(Value::Tuple(Rc::new(Tuple { items, depth })))
    }

    /// The stack position below which the current mark's values are out of reach.
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Value, String> {
        if self.stack.len() <= self.floor() {
            return Err("the stack is empty".into());
        }
        self.stack.pop().ok_or_else(|| "the stack is empty".to_string())
    }

    fn top(&self) -> Result<&Value, String> {
        if self.stack.len() <= self.floor() {
            return Err("the stack is empty".into());
        }
        self.stack.last().ok_or_else(|| "the stack is empty".to_string())
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self.marks.pop().ok_or_else(|| "no MARK to pop to".to_string())?;
        Ok(self.stack.split_off(mark))
    }

    fn top_list(&self) -> Result<Rc<List>, String> {
        match self.top()? {
            Value::List(l) => Ok(l.clone()),
            other => Err(format!("appending to a {}", other.type_name())),
        }
    }

    fn top_dict(&self) -> Result<Rc<Dict>, String> {
        match self.top()? {
            Value::Dict(d) => Ok(d.clone()),
            other => Err(format!("setting an item of a {}", other.type_name())),
        }
    }

    fn memoize(&mut self, index: u32) -> Result<(), String> {
        let value = self.top()?.clone();
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&index) {
            return Err(format!("more than {MAX_MEMO} memo entries"));
        }
        self.memo.insert(index, value);
        Ok(())
    }

    fn reduce(&mut self, callable: Value, args: Value) -> Result<Value, String> {
        let Value::Global(global) = callable else {
            return Err(format!("REDUCE calls a {}, not a known global", callable.type_name()));
        };
        let Value::Tuple(args) = args else {
            return Err(format!("REDUCE arguments are a {}, not a tuple", args.type_name()));
        };
        let args = &args.items;
        match global {
            Global::OrderedDict if args.is_empty() => Ok(Value::Dict(Container::new())),
            Global::OrderedDict => Err("OrderedDict(...) with arguments is not supported".into()),
            Global::RebuildTensorV2 | Global::RebuildTensor => rebuild_tensor(global, args),
            Global::RebuildParameter => match args.first() {
                Some(Value::Tensor(t)) if args.len() == 3 => Ok(Value::Tensor(t.clone())),
                _ => Err("_rebuild_parameter needs a tensor as its first argument".into()),
            },
            Global::StorageType(dtype) => Err(format!("calling the {dtype} storage class is not supported")),
        }
    }

    fn persistent_load(&mut self, pid: Value) -> Result<Rc<Storage>, String> {
        let bad = || "a persistent id must be ('storage', <storage class>, key, location, numel)".to_string();
        let Value::Tuple(pid) = pid else { return Err(bad()) };
        let [Value::Str(kind), Value::Global(Global::StorageType(dtype)), Value::Str(key), Value::Str(_), Value::Int(numel)] =
            pid.items.as_slice()
        else {
            return Err(bad());
        };
        if &**kind != "storage" {
            return Err(bad());
        }
        let numel = u64::try_from(*numel).map_err(|_| format!("storage `{key}` has a negative size {numel}"))?;
        let storage = Rc::new(Storage { key: key.clone(), dtype: *dtype, numel });
        match self.storages.get(key) {
            Some(known) if **known != *storage => Err(format!(
                "storage `{key}` is declared twice, as {} × {} and as {} × {}",
                known.numel, known.dtype, storage.numel, storage.dtype
            )),
            Some(known) => Ok(known.clone()),
            None => {
                self.storages.insert(key.clone(), storage.clone());
                Ok(storage)
            }
        }
    }
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[,
/// metadata])` or `_rebuild_tensor(storage, storage_offset, size, stride)`.
fn rebuild_tensor(global: Global, args: &[Value]) -> Result<Value, String> {
    let arity_ok = match global {
        Global::RebuildTensorV2 => matches!(args.len(), 6 | 7),
        _ => args.len() == 4,
    };
    let (true, [Value::Storage(storage), Value::Int(offset), Value::Tuple(size), Value::Tuple(stride), ..]) =
        (arity_ok, args)
    else {
        return Err("a tensor must be rebuilt from (storage, offset, size, stride, …)".into());
    };
    let non_negative = |v: &Value, what: &str| match v {
        Value::Int(i) => u64::try_from(*i).map_err(|_| format!("negative {what} {i}")),
        other => Err(format!("{what} is a {}, not an int", other.type_name())),
    };
    let offset = non_negative(&Value::Int(*offset), "storage offset")?;
    let size = size.items.iter().map(|v| non_negative(v, "size")).collect::<Result<Vec<_>, _>>()?;
    let stride = stride.items.iter().map(|v| non_negative(v, "stride")).collect::<Result<Vec<_>, _>>()?;
    if size.len() != stride.len() {
        return Err(format!("size has {} dimensions but stride has {}", size.len(), stride.len()));
    }
    Ok(Value::Tensor(Rc::new(TensorRef { storage: storage.clone(), offset, size, stride })))
}

fn resolve_global(module: &str, name: &str) -> Result<Global, String> {
    Ok(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch", storage) => match Dtype::from_torch_storage(storage) {
            Some(dtype) => Global::StorageType(dtype),
            None => return Err(format!("`torch.{storage}` is not a storage class this reader knows")),
        },
        _ => {
            return Err(format!(
                "global `{module}.{name}` is not one this reader accepts (only tensors, storages and \
                 dicts are read; no code is run)"
            ))
        }
    })
}

fn check_depth(depth: usize) -> Result<(), String> {
    match depth > MAX_DEPTH {
        true => Err(format!("values nest deeper than {MAX_DEPTH} levels")),
        false => Ok(()),
    }
}

/// Checks that `container` may take `items` (not frozen, not itself, depth in bounds) and
/// returns the container's new depth.
fn admit<T>(container: &Rc<Container<T>>, items: &[Value]) -> Result<usize, String> {
    if container.frozen.get() {
        return Err("filling a list or dict that is already inside another container".into());
    }
    let me = Rc::as_ptr(container) as *const ();
    let is_me = |v: &Value| match v {
        Value::List(l) => Rc::as_ptr(l) as *const () == me,
        Value::Dict(d) => Rc::as_ptr(d) as *const () == me,
        _ => false,
    };
    if items.iter().any(is_me) {
        return Err("a list or dict would contain itself".into());
    }
    let depth = container.depth.get().max(1 + items.iter().map(Value::depth).max().unwrap_or(0));
    check_depth(depth)?;
    items.iter().for_each(Value::freeze);
    Ok(depth)
}

fn fill_list(list: &Rc<List>, items: Vec<Value>) -> Result<(), String> {
    let depth = admit(list, &items)?;
    list.depth.set(depth);
    list.items.borrow_mut().extend(items);
    Ok(())
}

fn fill_dict(dict: &Rc<Dict>, items: Vec<Value>) -> Result<(), String> {
    if !items.len().is_multiple_of(2) {
        return Err(format!("SETITEMS with an odd number of values ({})", items.len()));
    }
    let depth = admit(dict, &items)?;
    dict.depth.set(depth);
    let mut entries = dict.items.borrow_mut();
    let mut items = items.into_iter();
    while let (Some(key), Some(value)) = (items.next(), items.next()) {
        entries.push((key, value));
    }
    Ok(())
}

/// A little-endian two's complement integer of at most 8 bytes.
fn long(bytes: &[u8]) -> Option<i64> {
    if bytes.len() > 8 {
        return None;
    }
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    let mut buf = [if negative { 0xff } else { 0 }; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    Some(i64::from_le_bytes(buf))
}

fn describe(op: u8) -> String {
    match op {
        0x20..=0x7e => format!("0x{op:02x} '{}'", op as char),
        _ => format!("0x{op:02x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bytes: &[u8]) -> Result<Value, String> {
        read(bytes)
    }

    #[test]
    fn reads_a_dict_of_ints_and_strings() {
        // {'a': 1, 'b': -2}, protocol 2.
        let p = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00bq\x02J\xfe\xff\xff\xffu.";
        let Value::Dict(d) = run(p).unwrap() else { panic!("not a dict") };
        let items = d.items.borrow();
        assert!(matches!(&items[0], (Value::Str(k), Value::Int(1)) if &**k == "a"));
        assert!(matches!(&items[1], (Value::Str(k), Value::Int(-2)) if &**k == "b"));
    }

    #[test]
    fn long1_is_twos_complement() {
        assert_eq!(long(&[]), Some(0));
        assert_eq!(long(&[0xff]), Some(-1));
        assert_eq!(long(&[0x00, 0x01]), Some(256));
        assert_eq!(long(&[0; 9]), None);
    }

    #[test]
    fn unknown_globals_are_refused_by_name() {
        let err = run(b"\x80\x02cos\nsystem\nq\x00.").unwrap_err();
        assert!(err.contains("`os.system`"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        // EMPTY_LIST, then (EMPTY_LIST, swap-in via APPEND) … built as nested tuples.
        let mut p = b"\x80\x02".to_vec();
        p.extend(std::iter::repeat_n(b'(', 1000));
        p.extend(std::iter::repeat_n(b't', 1000));
        p.push(b'.');
        let err = run(&p).unwrap_err();
        assert!(err.contains("deeper than"), "{err}");
    }

    #[test]
    fn self_containing_and_refilled_containers_are_refused() {
        // l = []; l.append(l)
        let err = run(b"\x80\x02]q\x00h\x00a.").unwrap_err();
        assert!(err.contains("contain itself"), "{err}");
        // a = []; b = [a]; a.append(1): `a` is frozen once inside `b`.
        let err = run(b"\x80\x02]q\x00(h\x00lq\x01h\x00K\x01a.").unwrap_err();
        assert!(err.contains("already inside"), "{err}");
    }

    #[test]
    fn memo_references_share_instead_of_copying() {
        // A 1000-element list referenced 100,000 times costs 100,000 stack slots, not 10⁸ values.
        let mut p = b"\x80\x02(".to_vec();
        p.extend(std::iter::repeat_n(b"K\x01".as_slice(), 1000).flatten());
        p.extend(b"lq\x00");
        p.push(b'(');
        p.extend(std::iter::repeat_n(b"h\x00".as_slice(), 100_000).flatten());
        p.extend(b"t.");
        let Value::Tuple(t) = run(&p).unwrap() else { panic!("not a tuple") };
        assert_eq!(t.items.len(), 100_000);
    }

    #[test]
    fn truncated_and_bad_lengths_are_errors() {
        assert!(run(b"\x80\x02X\xff\xff\xff\xff").unwrap_err().contains("runs past the end"));
        assert!(run(b"\x80\x02").unwrap_err().contains("without a STOP"));
        assert!(run(b"\x80\x02h\x05.").unwrap_err().contains("memo entry 5"));
        assert!(run(b"\x80\x02.").unwrap_err().contains("stack is empty"));
    }
}
