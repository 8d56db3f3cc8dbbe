// Calling the exports of a plugin of one contract version: each export's signature,
// typechecked once at load so that calls can use pre-checked typed functions, and the
// arguments and results in that version's records. The code is the same for every
// version; `include!`d by each `v<version>/mod.rs`, it binds to that version's records.

use wasmtime::component::{ComponentExportIndex, Func, Instance, InstancePre, TypedFunc};
use wasmtime::Store;

use super::arbiter::plugin::types as wit;
use super::convert;
use super::exports::arbiter::plugin::{decomposition as wdec, routing as wroute};
use crate::runtime::contract::{Call, Reply};
use crate::runtime::error::{Error, Result};
use crate::runtime::state::CallState;
use crate::runtime::types::PluginKind;

/// The functions a plugin kind exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Export {
    Info,
    CheckConfig,
    Verify,
    Select,
    Route,
    Decompose,
    Compose,
}

impl Export {
    fn name(self) -> &'static str {
        match self {
            Export::Info => "info",
            Export::CheckConfig => "check-config",
            Export::Verify => "verify",
            Export::Select => "select",
            Export::Route => "route",
            Export::Decompose => "decompose",
            Export::Compose => "compose",
        }
    }

    fn of(kind: PluginKind) -> &'static [Export] {
        match kind {
            PluginKind::Verifier => &[
                Export::Info,
                Export::CheckConfig,
                Export::Verify,
                Export::Select,
            ],
            PluginKind::Router => &[Export::Info, Export::CheckConfig, Export::Route],
            PluginKind::Decomposer => &[
                Export::Info,
                Export::CheckConfig,
                Export::Decompose,
                Export::Compose,
            ],
        }
    }
}

/// Parameter and result types of each export, as lowered and lifted by the host. These
/// exact types are typechecked once per plugin at load (`typecheck`), which is what
/// makes the unchecked per-call lookups in `dispatch` sound.
type Cfg<'a> = &'a [(String, String)];
type InfoSig = ((), (wit::PluginInfo,));
type CheckSig<'a> = ((Cfg<'a>,), (PluginResult<()>,));
type VerifySig<'a> = (
    (Cfg<'a>, &'a wit::Task, &'a wit::Candidate),
    (PluginResult<wit::Verdict>,),
);
type SelectSig<'a> = (
    (Cfg<'a>, &'a wit::Task, &'a [wit::Judged]),
    (PluginResult<wit::Selection>,),
);
type RouteSig<'a> = (
    (Cfg<'a>, &'a wit::Task, &'a [wroute::ModelOption]),
    (PluginResult<wroute::RouteDecision>,),
);
type DecomposeSig<'a> = ((Cfg<'a>, &'a wit::Task), (PluginResult<wdec::Plan>,));
type ComposeSig<'a> = (
    (Cfg<'a>, &'a wit::Task, &'a [wdec::Subresult]),
    (PluginResult<String>,),
);

/// Export indices resolved once at load: a call looks up only the function it needs.
pub(crate) struct Exports {
    indices: Vec<(Export, ComponentExportIndex)>,
}

impl Exports {
    pub(crate) fn resolve(
        pre: &InstancePre<CallState>,
        kind: PluginKind,
        interface: &str,
    ) -> Result<Exports> {
        let component = pre.component();
        let missing =
            |what: &str| Error::WrongWorld(format!("the component does not export `{what}`"));
        let iface = component
            .get_export_index(None, interface)
            .ok_or_else(|| missing(interface))?;
        let indices = Export::of(kind)
            .iter()
            .map(|e| {
                component
                    .get_export_index(Some(&iface), e.name())
                    .map(|i| (*e, i))
                    .ok_or_else(|| missing(&format!("{interface}#{}", e.name())))
            })
            .collect::<Result<_>>()?;
        Ok(Exports { indices })
    }

    fn func(
        &self,
        store: &mut Store<CallState>,
        instance: &Instance,
        export: Export,
    ) -> wasmtime::Result<Func> {
        let index = self
            .indices
            .iter()
            .find(|(e, _)| *e == export)
            .map(|(_, i)| i)
            .ok_or_else(|| {
                wasmtime::format_err!("plugin kind has no `{}` export", export.name())
            })?;
        instance
            .get_func(&mut *store, index)
            .ok_or_else(|| wasmtime::format_err!("export `{}` is not a function", export.name()))
    }

    /// Checks every export against the host's types (once per plugin).
    pub(crate) fn typecheck(
        &self,
        store: &mut Store<CallState>,
        instance: &Instance,
    ) -> wasmtime::Result<()> {
        for (export, index) in &self.indices {
            let s = &mut *store;
            match export {
                Export::Info => drop(instance.get_typed_func::<(), (wit::PluginInfo,)>(s, index)?),
                Export::CheckConfig => drop(
                    instance
                        .get_typed_func::<<CheckSig as Sig>::P, <CheckSig as Sig>::R>(s, index)?,
                ),
                Export::Verify => drop(
                    instance
                        .get_typed_func::<<VerifySig as Sig>::P, <VerifySig as Sig>::R>(s, index)?,
                ),
                Export::Select => drop(
                    instance
                        .get_typed_func::<<SelectSig as Sig>::P, <SelectSig as Sig>::R>(s, index)?,
                ),
                Export::Route => drop(
                    instance
                        .get_typed_func::<<RouteSig as Sig>::P, <RouteSig as Sig>::R>(s, index)?,
                ),
                Export::Decompose => drop(
                    instance.get_typed_func::<<DecomposeSig as Sig>::P, <DecomposeSig as Sig>::R>(
                        s, index,
                    )?,
                ),
                Export::Compose => drop(
                    instance.get_typed_func::<<ComposeSig as Sig>::P, <ComposeSig as Sig>::R>(
                        s, index,
                    )?,
                ),
            }
        }
        Ok(())
    }
}

/// Splits a `(params, results)` signature alias into its parts.
trait Sig {
    type P;
    type R;
}

impl<P, R> Sig for (P, R) {
    type P = P;
    type R = R;
}

pub(crate) enum Args {
    Info,
    CheckConfig(Vec<(String, String)>),
    Verify(Vec<(String, String)>, wit::Task, wit::Candidate),
    Select(Vec<(String, String)>, wit::Task, Vec<wit::Judged>),
    Route(Vec<(String, String)>, wit::Task, Vec<wroute::ModelOption>),
    Decompose(Vec<(String, String)>, wit::Task),
    Compose(Vec<(String, String)>, wit::Task, Vec<wdec::Subresult>),
}

type PluginResult<T> = std::result::Result<T, wit::PluginError>;

pub(crate) enum Returned {
    Info(wit::PluginInfo),
    Unit(PluginResult<()>),
    Verdict(PluginResult<wit::Verdict>),
    Selection(PluginResult<wit::Selection>),
    Route(PluginResult<wroute::RouteDecision>),
    Plan(PluginResult<wdec::Plan>),
    Text(PluginResult<String>),
}

pub(crate) async fn dispatch(
    store: &mut Store<CallState>,
    instance: &Instance,
    exports: &Exports,
    call: Args,
) -> wasmtime::Result<Returned> {
    /// Calls `$export` with the signature `$sig` (typechecked at load, see `Exports`).
    macro_rules! invoke {
        ($export:expr, $sig:ty, $args:expr) => {{
            let func = exports.func(store, instance, $export)?;
            // SAFETY: `Exports::typecheck` checked this export against exactly `$sig`
            // when the plugin was loaded, and every instance comes from the same
            // pre-instantiated component.
            let typed =
                unsafe { TypedFunc::<<$sig as Sig>::P, <$sig as Sig>::R>::new_unchecked(func) };
            typed.call_async(&mut *store, $args).await?.0
        }};
    }
    Ok(match call {
        Args::Info => Returned::Info(invoke!(Export::Info, InfoSig, ())),
        Args::CheckConfig(c) => Returned::Unit(invoke!(Export::CheckConfig, CheckSig, (&c[..],))),
        Args::Verify(c, t, k) => {
            Returned::Verdict(invoke!(Export::Verify, VerifySig, (&c[..], &t, &k)))
        }
        Args::Select(c, t, j) => {
            Returned::Selection(invoke!(Export::Select, SelectSig, (&c[..], &t, &j[..])))
        }
        Args::Route(c, t, o) => {
            Returned::Route(invoke!(Export::Route, RouteSig, (&c[..], &t, &o[..])))
        }
        Args::Decompose(c, t) => {
            Returned::Plan(invoke!(Export::Decompose, DecomposeSig, (&c[..], &t)))
        }
        Args::Compose(c, t, r) => {
            Returned::Text(invoke!(Export::Compose, ComposeSig, (&c[..], &t, &r[..])))
        }
    })
}

/// What each element of a returned list costs besides its text: about the host's memory
/// for it (a string's header, a record's fields), so a list of empty strings is not free.
const ELEMENT: usize = 32;

/// Bytes a reply made the host allocate: its text, and [`ELEMENT`] per list element.
fn reply_bytes(reply: &Returned) -> usize {
    fn err_len(e: &wit::PluginError) -> usize {
        match e {
            wit::PluginError::InvalidConfig(m)
            | wit::PluginError::InvalidInput(m)
            | wit::PluginError::Failed(m) => m.len(),
        }
    }
    fn of<T>(r: &PluginResult<T>, f: impl Fn(&T) -> usize) -> usize {
        match r {
            Ok(v) => f(v),
            Err(e) => err_len(e),
        }
    }
    match reply {
        Returned::Info(i) => {
            i.name.len()
                + i.version.len()
                + i.description.len()
                + i.config_keys
                    .iter()
                    .map(|k| {
                        ELEMENT
                            + k.name.len()
                            + k.description.len()
                            + k.default.as_ref().map_or(0, |d| d.len())
                    })
                    .sum::<usize>()
        }
        Returned::Unit(r) => of(r, |_| 0),
        Returned::Verdict(r) => of(r, |v| {
            v.reason.len()
                + v.details.as_ref().map_or(0, |d| d.len())
                + v.checks
                    .iter()
                    .map(|c| ELEMENT + c.name.len() + c.message.as_ref().map_or(0, |m| m.len()))
                    .sum::<usize>()
        }),
        Returned::Selection(r) => of(r, |s| s.reason.len() + s.scores.len() * 8),
        Returned::Route(r) => of(r, |d| {
            d.reason.len()
                + d.steps
                    .iter()
                    .map(|s| ELEMENT + s.target.len())
                    .sum::<usize>()
        }),
        Returned::Plan(r) => of(r, |p| {
            p.reason.len()
                + p.subtasks
                    .iter()
                    .map(|s| {
                        ELEMENT
                            + s.id.len()
                            + s.prompt.len()
                            + s.depends_on
                                .iter()
                                .map(|d| ELEMENT + d.len())
                                .sum::<usize>()
                            + s.route.as_ref().map_or(0, |x| x.len())
                            + s.verify.as_ref().map_or(0, |x| x.len())
                    })
                    .sum::<usize>()
        }),
        Returned::Text(r) => of(r, |s| s.len()),
    }
}

/// A host call in this version's records. Done before the call starts, as the records
/// are built from borrowed host values.
pub(crate) fn prepare(call: Call<'_>) -> Args {
    match call {
        Call::Info => Args::Info,
        Call::CheckConfig(c) => Args::CheckConfig(convert::config_to(c)),
        Call::Verify(c, t, k) => Args::Verify(
            convert::config_to(c),
            convert::task_to(t),
            convert::candidate_to(k),
        ),
        Call::Select(c, t, j) => Args::Select(
            convert::config_to(c),
            convert::task_to(t),
            j.iter().map(convert::judged_to).collect(),
        ),
        Call::Route(c, t, o) => Args::Route(
            convert::config_to(c),
            convert::task_to(t),
            o.iter().map(convert::option_to).collect(),
        ),
        Call::Decompose(c, t) => Args::Decompose(convert::config_to(c), convert::task_to(t)),
        Call::Compose(c, t, r) => Args::Compose(
            convert::config_to(c),
            convert::task_to(t),
            r.iter().map(convert::subresult_to).collect(),
        ),
    }
}

impl Returned {
    /// Bytes of text the plugin returned, measured before anything is converted.
    pub(crate) fn bytes(&self) -> usize {
        reply_bytes(self)
    }

    pub(crate) fn into_reply(self) -> Reply {
        let failure = convert::failure_from;
        match self {
            Returned::Info(i) => Reply::Info(convert::info_from(i)),
            Returned::Unit(r) => Reply::Unit(r.map_err(failure)),
            Returned::Verdict(r) => Reply::Verdict(r.map(convert::verdict_from).map_err(failure)),
            Returned::Selection(r) => {
                Reply::Selection(r.map(convert::selection_from).map_err(failure))
            }
            Returned::Route(r) => {
                Reply::Route(r.map(convert::decision_route_from).map_err(failure))
            }
            Returned::Plan(r) => Reply::Plan(r.map(convert::plan_from).map_err(failure)),
            Returned::Text(r) => Reply::Text(r.map_err(failure)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_elements_cost_something_even_when_empty() {
        let check = wit::Check {
            name: String::new(),
            passed: true,
            message: None,
        };
        let verdict = wit::Verdict {
            score: 1.0,
            decision: wit::Decision::Accept,
            reason: String::new(),
            checks: vec![check; 1000],
            details: None,
        };
        assert_eq!(Returned::Verdict(Ok(verdict)).bytes(), 1000 * ELEMENT);
        let subtask = wdec::Subtask {
            id: String::new(),
            prompt: String::new(),
            depends_on: vec![String::new(); 9],
            route: None,
            verify: None,
        };
        let plan = wdec::Plan {
            reason: String::new(),
            subtasks: vec![subtask; 100],
        };
        assert_eq!(Returned::Plan(Ok(plan)).bytes(), 100 * 10 * ELEMENT);
    }
}
