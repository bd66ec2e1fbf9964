//! Buffer lifetimes and their places in the two arenas: each buffer gets the lowest aligned
//! offset that overlaps no buffer live at the same time, the largest buffers first.

use super::{Access, Arena, Plan, Role, BUFFER_ALIGN};
use crate::engine::EngineError;

/// Sets every buffer's lifetime from the steps that touch it, then its offset, then the arenas'
/// sizes. Fails on a buffer no step touches, or read before anything wrote it.
pub(super) fn allocate(plan: &mut Plan) -> Result<(), EngineError> {
    let forward_start = plan.prologue.len();
    let end = forward_start + plan.forward.len() - 1;
    let mut first: Vec<Option<(usize, Access)>> = vec![None; plan.buffers.len()];
    let mut last = vec![0; plan.buffers.len()];
    for (index, step) in plan.timeline().enumerate() {
        for (buffer, access) in step.op.buffers() {
            first[buffer.0].get_or_insert((index, access));
            last[buffer.0] = index;
        }
    }
    for (i, buffer) in plan.buffers.iter_mut().enumerate() {
        let (start, access) =
            first[i].ok_or_else(|| EngineError::Plan(format!("no step uses buffer `{}`", buffer.name)))?;
        // Inputs are written by the executor before their phase; the output is read after the
        // forward; constants live as long as the engine.
        let start = match buffer.role {
            Role::Text => 0,
            Role::Ids | Role::Timesteps => forward_start,
            _ if access == Access::Read || access == Access::ReadWrite => {
                return Err(EngineError::Plan(format!("buffer `{}` is read before it is written", buffer.name)));
            }
            _ => start,
        };
        let stop = match buffer.role {
            Role::Output | Role::Constant => end,
            _ => last[i],
        };
        buffer.lifetime = (start, stop);
    }
    plan.constants_bytes = place(plan, Arena::Constants);
    plan.workspace_bytes = place(plan, Arena::Workspace);
    Ok(())
}

/// Whether two inclusive step ranges share a step.
pub(super) fn overlap(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

/// Places the buffers of `arena`; returns the arena's size.
fn place(plan: &mut Plan, arena: Arena) -> usize {
    let mut order: Vec<usize> = (0..plan.buffers.len()).filter(|&i| plan.buffers[i].arena == arena).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(plan.buffers[i].bytes()), i));
    let mut placed: Vec<usize> = Vec::with_capacity(order.len());
    let mut size = 0;
    for i in order {
        let (bytes, lifetime) = (plan.buffers[i].bytes(), plan.buffers[i].lifetime);
        let mut taken: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&j| overlap(plan.buffers[j].lifetime, lifetime))
            .map(|&j| (plan.buffers[j].offset, plan.buffers[j].offset + plan.buffers[j].bytes()))
            .collect();
        taken.sort_unstable();
        let mut offset = 0;
        for (start, stop) in taken {
            if offset + bytes <= start {
                break;
            }
            offset = offset.max(stop.next_multiple_of(BUFFER_ALIGN));
        }
        plan.buffers[i].offset = offset;
        size = size.max(offset + bytes);
        placed.push(i);
    }
    size.next_multiple_of(BUFFER_ALIGN)
}
