//! Generation-tagged tokens.
//!
//! mio hands back the `Token` we registered with. Connections live in a slab,
//! and a slab reuses freed indices at once; an event already returned for a
//! freed slot would then reach the connection that reuses it (mio #219,
//! hjr3/mob PR #2, mio #172: `deregister` does not remove events already in the
//! batch). Every slab entry therefore records a generation, and the token and
//! the public ids carry it too: a lookup whose generation differs is stale and
//! is dropped.
//!
//! Layout of the 64-bit token:
//!
//! | bits  | field                                   |
//! |-------|-----------------------------------------|
//! | 62–63 | kind (connection, listener, system)     |
//! | 32–61 | generation (30 bits, wraps)             |
//! | 0–31  | slab index                              |

use mio::Token;
use std::fmt;

const INDEX_BITS: u32 = 32;
const GEN_BITS: u32 = 30;
const GEN_MASK: u64 = (1 << GEN_BITS) - 1;
const KIND_SHIFT: u32 = INDEX_BITS + GEN_BITS;

/// What a token refers to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A connection in the connection slab.
    Conn = 0,
    /// A listening socket in the server slab.
    Listener = 1,
    /// The loop's own sources (waker, signals, watched descriptors).
    System = 2,
}

/// A slab index plus the generation of the entry it was issued for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Slab index.
    pub index: u32,
    /// Generation of the entry (30 bits).
    pub gen: u32,
}

impl Key {
    /// Encode as a mio token of the given kind.
    pub fn token(self, kind: Kind) -> Token {
        let v = ((kind as u64) << KIND_SHIFT)
            | ((self.gen as u64 & GEN_MASK) << INDEX_BITS)
            | self.index as u64;
        Token(v as usize)
    }

    /// Decode a mio token. `None` for a token of unknown kind.
    pub fn from_token(t: Token) -> Option<(Kind, Key)> {
        let v = t.0 as u64;
        let kind = match v >> KIND_SHIFT {
            0 => Kind::Conn,
            1 => Kind::Listener,
            2 => Kind::System,
            _ => return None,
        };
        let key = Key {
            index: (v & 0xFFFF_FFFF) as u32,
            gen: ((v >> INDEX_BITS) & GEN_MASK) as u32,
        };
        Some((kind, key))
    }
}

/// Hands out generations: one counter per loop, so a reused index never gets
/// the generation it had before (until 2^30 inserts wrap it).
#[derive(Debug, Default)]
pub struct GenCounter(u32);

impl GenCounter {
    /// The next generation.
    pub fn advance(&mut self) -> u32 {
        self.0 = (self.0 + 1) & GEN_MASK as u32;
        self.0
    }
}

/// Identifies one connection for as long as it lives. Ids of closed
/// connections never alias a later connection in the same slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub(crate) Key);

/// Identifies one listening server.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId(pub(crate) Key);

impl ConnId {
    /// A compact number for this id (for timer tags and logs).
    pub fn to_u64(self) -> u64 {
        ((self.0.gen as u64) << INDEX_BITS) | self.0.index as u64
    }

    /// Inverse of [`ConnId::to_u64`].
    pub fn from_u64(v: u64) -> ConnId {
        ConnId(Key {
            index: (v & 0xFFFF_FFFF) as u32,
            gen: ((v >> INDEX_BITS) & GEN_MASK) as u32,
        })
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}.{}", self.0.index, self.0.gen)
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "server#{}.{}", self.0.index, self.0.gen)
    }
}

/// A slab whose entries remember their generation, so stale keys miss.
#[derive(Debug)]
pub struct GenSlab<T> {
    slab: slab::Slab<Slot<T>>,
    /// Where entry 0 lies, derived from the last insert (the slab's storage
    /// moves only when an insert grows it), for [`GenSlab::prefetch`]; 0
    /// before the first insert. An address, not a pointer: it is never
    /// dereferenced.
    base: usize,
}

/// One entry: the generation before the value (`repr(C)`: in a tuple Rust
/// may put it after a large value, a cache line away from the value's first
/// fields, and every lookup reads it), starting a cache line, so a value
/// whose hot fields come first (a connection: see
/// [`crate::reactor::conn::Conn`]) has them in as few lines as their size
/// allows, not one more wherever the entry happens to straddle a line.
#[derive(Debug)]
#[repr(C, align(64))]
struct Slot<T> {
    gen: u32,
    value: T,
}

impl<T> Default for GenSlab<T> {
    fn default() -> Self {
        GenSlab {
            slab: slab::Slab::new(),
            base: 0,
        }
    }
}

impl<T> GenSlab<T> {
    /// Insert, tagging the entry with a fresh generation.
    pub fn insert(&mut self, gens: &mut GenCounter, value: T) -> Key {
        let gen = gens.advance();
        let index = self.slab.insert(Slot { gen, value });
        self.note_base(index);
        Key {
            index: index as u32,
            gen,
        }
    }

    /// Insert the value `make` builds from its key, if it builds one: the
    /// slot is reserved first, so a value that must know its own key (a
    /// socket registered under its token) is built before it is stored, and
    /// a failure leaves nothing behind.
    pub fn try_insert_with<E>(
        &mut self,
        gens: &mut GenCounter,
        make: impl FnOnce(Key) -> Result<T, E>,
    ) -> Result<Key, E> {
        let slot = self.slab.vacant_entry();
        let key = Key {
            index: slot.key() as u32,
            gen: gens.advance(),
        };
        slot.insert(Slot {
            gen: key.gen,
            value: make(key)?,
        });
        self.note_base(key.index as usize);
        Ok(key)
    }

    /// Remember where entry 0 lies, from the entry just inserted at `index`.
    fn note_base(&mut self, index: usize) {
        if let Some(s) = self.slab.get(index) {
            self.base = (s as *const Slot<T> as usize)
                .wrapping_sub(index.wrapping_mul(std::mem::size_of::<Slot<T>>()));
        }
    }

    /// Start loading the first `lines` cache lines of entry `index` into
    /// the cache, without reading it (a hint that never faults). The address is
    /// computed, not looked up: a lookup would itself wait for the line.
    /// It assumes the slab stores its entries as the bare values (the
    /// occupied mark in a niche of the value, as for a connection: a test
    /// checks); otherwise the hint misses and costs nothing but the fetch.
    #[inline]
    pub fn prefetch(&self, index: u32, lines: usize) {
        let index = index as usize;
        if self.base != 0 && index < self.slab.capacity() {
            let at = self.base + index * std::mem::size_of::<Slot<T>>();
            super::prefetch::lines_at(at, lines);
        }
    }

    /// Whether [`GenSlab::prefetch`] computes the address of every entry
    /// in use (the slab stores bare values, with no separate tag).
    #[cfg(test)]
    pub(crate) fn prefetch_addresses_hold(&self) -> bool {
        let size = std::mem::size_of::<Slot<T>>();
        self.slab
            .iter()
            .all(|(i, s)| self.base + i * size == s as *const Slot<T> as usize)
    }

    /// The entry for `key`, if it is still the one the key was issued for.
    pub fn get(&self, key: Key) -> Option<&T> {
        match self.slab.get(key.index as usize) {
            Some(s) if s.gen == key.gen => Some(&s.value),
            _ => None,
        }
    }

    /// Mutable form of [`GenSlab::get`].
    pub fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        match self.slab.get_mut(key.index as usize) {
            Some(s) if s.gen == key.gen => Some(&mut s.value),
            _ => None,
        }
    }

    /// Remove the entry if `key` is current.
    pub fn remove(&mut self, key: Key) -> Option<T> {
        self.get(key)?;
        Some(self.slab.remove(key.index as usize).value)
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// No live entries.
    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Keys of all live entries.
    pub fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.slab.iter().map(|(i, s)| Key {
            index: i as u32,
            gen: s.gen,
        })
    }

    /// All live entries with their keys.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &T)> + '_ {
        self.slab.iter().map(|(i, s)| {
            (
                Key {
                    index: i as u32,
                    gen: s.gen,
                },
                &s.value,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_roundtrip() {
        for kind in [Kind::Conn, Kind::Listener, Kind::System] {
            for key in [
                Key { index: 0, gen: 1 },
                Key {
                    index: u32::MAX,
                    gen: GEN_MASK as u32,
                },
                Key {
                    index: 12345,
                    gen: 678,
                },
            ] {
                assert_eq!(Key::from_token(key.token(kind)), Some((kind, key)));
            }
        }
        assert_eq!(Key::from_token(Token(usize::MAX)), None);
    }

    /// A value that fails to build (a listener whose registration failed)
    /// leaves no entry behind; one that builds is stored under the key it saw.
    #[test]
    fn try_insert_with_stores_nothing_on_failure() {
        let mut gens = GenCounter::default();
        let mut s: GenSlab<Key> = GenSlab::default();
        let failed: Result<Key, &str> = s.try_insert_with(&mut gens, |_| Err("register failed"));
        assert_eq!(failed, Err("register failed"));
        assert!(s.is_empty(), "a failed insert left an entry");
        let key = s.try_insert_with(&mut gens, Ok::<_, ()>).unwrap();
        assert_eq!(s.get(key), Some(&key), "the value saw its own key");
        assert_eq!(s.len(), 1);
    }

    /// Regression for mio #219: an event for a freed slot must not reach the
    /// entry that reuses the slot.
    #[test]
    fn stale_key_after_slot_reuse_misses() {
        let mut gens = GenCounter::default();
        let mut s = GenSlab::default();
        let old = s.insert(&mut gens, "first");
        assert_eq!(s.remove(old), Some("first"));
        let new = s.insert(&mut gens, "second");
        assert_eq!(new.index, old.index, "the slab reuses the index");
        assert_ne!(new.gen, old.gen);
        assert_eq!(s.get(old), None);
        assert_eq!(s.remove(old), None);
        assert_eq!(s.get(new), Some(&"second"));
        let (_, decoded) = Key::from_token(old.token(Kind::Conn)).unwrap();
        assert_eq!(s.get(decoded), None);
    }

    #[test]
    fn conn_id_u64_roundtrip() {
        let id = ConnId(Key { index: 77, gen: 99 });
        assert_eq!(ConnId::from_u64(id.to_u64()), id);
    }
}
