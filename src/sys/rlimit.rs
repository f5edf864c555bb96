//! Resource limits: tend's own `RLIMIT_NOFILE`, and the limits a service gets
//! (applied in the child by [`super::spawn`], prepared here).

/// The resources a service's `limits` can set (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Nofile,
    Nproc,
    Core,
    /// `RLIMIT_AS`, the config's `memory`.
    AddressSpace,
    Cpu,
    Fsize,
}

#[cfg(target_env = "gnu")]
pub(crate) type RawResource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
pub(crate) type RawResource = libc::c_int;

impl Resource {
    pub(crate) fn raw(self) -> RawResource {
        match self {
            Resource::Nofile => libc::RLIMIT_NOFILE,
            Resource::Nproc => libc::RLIMIT_NPROC,
            Resource::Core => libc::RLIMIT_CORE,
            Resource::AddressSpace => libc::RLIMIT_AS,
            Resource::Cpu => libc::RLIMIT_CPU,
            Resource::Fsize => libc::RLIMIT_FSIZE,
        }
    }
}

/// A limit to set in a child: soft and hard both at `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: Resource,
    pub value: u64,
}

impl Rlimit {
    /// The resource and the `struct rlimit` that `prlimit64` takes.
    pub(crate) fn raw(self) -> (RawResource, libc::rlimit) {
        let v = self.value as libc::rlim_t;
        (
            self.resource.raw(),
            libc::rlimit {
                rlim_cur: v,
                rlim_max: v,
            },
        )
    }
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit (tend holds two pipes per
/// service and uses epoll, so the traditional 1024 is too few for big configs).
/// Returns the limit as it was, for the children to get back.
pub fn raise_nofile() -> Option<libc::rlimit> {
    let mut original = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut original) } == -1 {
        return None;
    }
    if original.rlim_cur < original.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: original.rlim_max,
            rlim_max: original.rlim_max,
        };
        // SAFETY: a valid in-pointer.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
    }
    Some(original)
}
