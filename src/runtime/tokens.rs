//! mio token allocation. Tokens come from a counter and are never reused, so a
//! stale event for a closed source can never reach a source opened later.

use mio::Token;

/// Hands out fresh tokens. Token 0 is reserved for the signal pipe.
#[derive(Debug)]
pub struct Tokens {
    next: usize,
}

/// The signal self-pipe's token.
pub const SIGNALS: Token = Token(0);

impl Default for Tokens {
    fn default() -> Self {
        Tokens { next: 1 }
    }
}

impl Tokens {
    /// Tokens from `next` on: after `tend reexec`, the sources handed over
    /// keep their tokens, and new ones must not collide with them.
    pub fn starting_at(next: usize) -> Tokens {
        Tokens { next: next.max(1) }
    }

    /// The token the next call to [`Tokens::next`] gives.
    pub fn peek(&self) -> usize {
        self.next
    }

    /// A token never handed out before. (Not an `Iterator`: it never ends.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Token {
        let token = Token(self.next);
        self.next = self.next.wrapping_add(1).max(1);
        token
    }
}
