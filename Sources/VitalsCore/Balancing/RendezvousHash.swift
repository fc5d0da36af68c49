import Foundation

/// A 64-bit hash that is the same in every process, on every machine and in
/// every release: FNV-1a over the bytes, then the MurmurHash3 finalizer
/// (`fmix64`) to spread FNV's weak low bits.
///
/// Swift's `Hasher` is seeded per process, so it must never decide which
/// member a client sticks to: two agents (or one agent after a restart) would
/// send the same client to different members.
public enum StableHash {
    public static let fnvOffsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    public static let fnvPrime: UInt64 = 0x0000_0100_0000_01b3

    /// Plain 64-bit FNV-1a of `bytes`, continuing from `state`.
    public static func fnv1a<Bytes: Sequence>(_ bytes: Bytes, state: UInt64 = fnvOffsetBasis) -> UInt64
    where Bytes.Element == UInt8 {
        var hash = state
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= fnvPrime
        }
        return hash
    }

    /// The MurmurHash3 64-bit finalizer: every input bit affects every output bit.
    public static func mix(_ value: UInt64) -> UInt64 {
        var h = value
        h ^= h >> 33
        h &*= 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        h &*= 0xc4ce_b9fe_1a85_ec53
        h ^= h >> 33
        return h
    }

    /// The hash of the pair (`key`, `member`). The two UTF-8 texts are joined
    /// by 0xFF, a byte UTF-8 never contains, so ("ab", "c") and ("a", "bc") differ.
    public static func hash(key: String, member: String) -> UInt64 {
        var state = fnv1a(key.utf8)
        state = fnv1a(CollectionOfOne(0xFF), state: state)
        return mix(fnv1a(member.utf8, state: state))
    }
}

/// Weighted rendezvous (highest-random-weight) hashing.
///
/// Each member scores `-weight / ln(u)`, where `u` in (0, 1) comes from
/// `StableHash.hash(key:member:)`; the highest score wins. A member's score
/// depends only on the key, its own name and its own weight, so removing a
/// member moves exactly the keys it held and nothing else, and bringing it
/// back returns exactly those keys. Over many keys each member wins a share
/// proportional to its weight.
public enum RendezvousHash {
    /// The uniform draw in the open interval (0, 1) for `key` and `member`.
    public static func unit(key: String, member: String) -> Double {
        // The top 53 bits fill a Double's mantissa exactly; the half step keeps 0 and 1 out.
        (Double(StableHash.hash(key: key, member: member) >> 11) + 0.5) / 9_007_199_254_740_992.0
    }

    /// The score of `member` for `key` at `weight` (> 0). Higher wins.
    public static func score(key: String, member: String, weight: Double) -> Double {
        -weight / log(unit(key: key, member: member))
    }
}
