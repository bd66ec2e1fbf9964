//! burn-flex: the CPU fast paths.

use burn::backend::Flex;

use super::cpu_methods;
use crate::KernelBackend;

impl KernelBackend for Flex {
    cpu_methods!();
}
