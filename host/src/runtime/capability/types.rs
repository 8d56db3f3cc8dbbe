//! `types`: the records the other interfaces share. It has no functions and every plugin
//! imports it, so it is linked for all of them.

use wasmtime::component::{HasData, Linker};

use super::Capability;
use crate::runtime::contract;
use crate::runtime::state::CallState;

pub(super) const CAPABILITY: Capability = Capability {
    name: "types",
    add_to_linker,
};

fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    contract::v0_1_0::add_types(linker)?;
    contract::v0_2_0::add_types(linker)
}

/// The interface has no functions, hence no state.
pub(crate) struct Types;

impl HasData for Types {
    type Data<'a> = Types;
}
