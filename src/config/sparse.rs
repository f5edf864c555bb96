//! [`Sparse`]: a group of settings that most services leave at their
//! defaults, stored as a pointer that is null while they are.
//!
//! tend keeps every service's definition for its whole life (the shell spawns
//! and probes from it), so each byte of a `ServiceSpec` is paid once per
//! service: 10,000 services, 10,000 times. A group behind a `Sparse` costs a
//! definition 8 bytes while every field in it has its default, and a box of
//! its own only when one is set. Reading goes through `Deref` (the shared
//! defaults when unset); writing through `DerefMut` boxes a copy of the
//! defaults first. Whoever writes fields one by one (the validator, the
//! snapshot decoder) calls [`Sparse::compact`] afterwards, so that a group
//! written back to its defaults frees its box again.
//!
//! Must not: change what a definition means or how it compares: a `Sparse`
//! equals another when their groups are equal, boxed or not.

use std::fmt;
use std::ops::{Deref, DerefMut};

/// A type with one shared instance of its defaults.
pub trait Defaults: Clone + PartialEq + 'static {
    /// The defaults: what an unset [`Sparse`] reads as.
    fn defaults() -> &'static Self;
}

/// `T`, boxed only when it differs from `T::defaults()` (see the module doc).
#[derive(Clone)]
pub struct Sparse<T: Defaults>(Option<Box<T>>);

impl<T: Defaults> Sparse<T> {
    /// Every field at its default, and no box.
    pub const DEFAULT: Self = Sparse(None);

    /// `value`, boxed only if it is not the defaults.
    pub fn new(value: T) -> Self {
        let mut sparse = Sparse(Some(Box::new(value)));
        sparse.compact();
        sparse
    }

    /// Free the box if the group is back at its defaults.
    pub fn compact(&mut self) {
        if self.0.as_deref() == Some(T::defaults()) {
            self.0 = None;
        }
    }

    /// Whether the group has a box of its own (some field is not its default,
    /// or was written since the last `compact`).
    pub fn is_boxed(&self) -> bool {
        self.0.is_some()
    }
}

impl<T: Defaults> Default for Sparse<T> {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl<T: Defaults> Deref for Sparse<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.0.as_deref().unwrap_or_else(|| T::defaults())
    }
}

impl<T: Defaults> DerefMut for Sparse<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0
            .get_or_insert_with(|| Box::new(T::defaults().clone()))
    }
}

impl<T: Defaults> PartialEq for Sparse<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Defaults + fmt::Debug> fmt::Debug for Sparse<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Group {
        a: Option<u32>,
        b: Option<String>,
    }

    static GROUP: Group = Group { a: None, b: None };

    impl Defaults for Group {
        fn defaults() -> &'static Group {
            &GROUP
        }
    }

    #[test]
    fn unset_reads_the_defaults_and_holds_no_box() {
        let s: Sparse<Group> = Sparse::DEFAULT;
        assert!(!s.is_boxed());
        assert_eq!(*s, GROUP);
        assert_eq!(std::mem::size_of::<Sparse<Group>>(), 8);
    }

    #[test]
    fn a_write_boxes_and_compact_frees_only_when_back_at_the_defaults() {
        let mut s: Sparse<Group> = Sparse::DEFAULT;
        s.a = Some(3);
        assert!(s.is_boxed());
        s.compact();
        assert!(s.is_boxed(), "a set field keeps its box");
        assert_eq!(s.a, Some(3));
        s.a = None;
        s.compact();
        assert!(!s.is_boxed());
        assert!(!Sparse::new(GROUP.clone()).is_boxed());
        assert!(
            Sparse::new(Group {
                a: None,
                b: Some("x".into())
            })
            .is_boxed()
        );
    }

    #[test]
    fn equality_is_the_groups_boxed_or_not() {
        let mut boxed: Sparse<Group> = Sparse::DEFAULT;
        boxed.b = None; // a write: boxed, still the defaults
        assert!(boxed.is_boxed());
        assert_eq!(boxed, Sparse::DEFAULT);
        boxed.a = Some(1);
        assert_ne!(boxed, Sparse::DEFAULT);
        assert_eq!(boxed.clone(), boxed);
    }
}
