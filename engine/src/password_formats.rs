//! The stored password hashes the engine accepts: its own argon2id, and what
//! another system may have left behind when its users were moved in (see
//! `tachigo-auth user import`) — argon2i/argon2d, bcrypt (`$2a$`, `$2b$`,
//! `$2y$`), and scrypt and PBKDF2 as PHC strings. Each is verified by the
//! RustCrypto crate (or the `bcrypt` crate) for its scheme.
//!
//! A hash is parsed fully before any work is spent on it, and its cost
//! parameters are bounded: a hash whose verification would hold a password
//! slot for many seconds, or ask for gigabytes of memory, is refused when it
//! is imported and never verified, so a hostile or corrupt import file cannot
//! turn logins into a denial of service. Anything other than argon2id with the
//! current parameters is rehashed after the next successful login
//! ([`needs_rehash`]).

use argon2::password_hash::{Ident, Output, PasswordHash, PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use base64::Engine as _;
use thiserror::Error;

/// The longest hash string looked at; every accepted format is far shorter.
pub const MAX_HASH_LEN: usize = 512;
/// Highest bcrypt cost accepted (2^16 rounds: seconds per check).
pub const MAX_BCRYPT_COST: u32 = 16;
/// Highest scrypt `ln` (log2 N) accepted.
pub const MAX_SCRYPT_LOG_N: u8 = 20;
/// Most memory one scrypt or argon2 check may take, in bytes.
pub const MAX_HASH_MEMORY: u64 = 256 * 1024 * 1024;
/// Largest scrypt N·r·p accepted (four times the crate's recommended 2^17·8·1).
pub const MAX_SCRYPT_WORK: u64 = 1 << 22;
/// Largest argon2 m·t accepted, in KiB-passes (1 GiB: e.g. 256 MiB × 4 passes).
pub const MAX_ARGON2_WORK: u64 = 1 << 20;
/// Most argon2 passes and lanes accepted.
pub const MAX_ARGON2_T: u32 = 16;
pub const MAX_ARGON2_P: u32 = 16;
/// Most PBKDF2 iterations accepted.
pub const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;

/// Why a stored hash is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HashRefusal {
    #[error("the password hash is longer than {MAX_HASH_LEN} bytes")]
    TooLong,
    #[error(
        "the password hash is in no accepted format (argon2, bcrypt $2a$/$2b$/$2y$, \
         or scrypt / PBKDF2 in PHC form)"
    )]
    UnknownFormat,
    #[error("the {0} password hash is malformed")]
    Malformed(&'static str),
    #[error("the {scheme} password hash asks for too much work: {limit}")]
    TooCostly {
        scheme: &'static str,
        limit: &'static str,
    },
}

/// A hash parsed far enough that verifying it can only succeed or fail on the password.
enum Parsed<'a> {
    Argon2 {
        hash: PasswordHash<'a>,
        scheme: &'static str,
        current: bool,
    },
    Bcrypt(&'a str),
    Scrypt(PasswordHash<'a>),
    Pbkdf2 {
        hash: PasswordHash<'a>,
        scheme: &'static str,
        rounds: u32,
    },
}

impl Parsed<'_> {
    fn scheme(&self) -> &'static str {
        match self {
            Parsed::Argon2 { scheme, .. } | Parsed::Pbkdf2 { scheme, .. } => scheme,
            Parsed::Bcrypt(_) => "bcrypt",
            Parsed::Scrypt(_) => "scrypt",
        }
    }
}

/// The scheme of an acceptable hash (`argon2id`, `bcrypt`, `pbkdf2-sha256`, …),
/// or why it is refused.
pub fn scheme(hash: &str) -> Result<&'static str, HashRefusal> {
    parse(hash).map(|p| p.scheme())
}

/// Whether `hash` is in an accepted format with bounded cost.
pub fn is_acceptable(hash: &str) -> bool {
    parse(hash).is_ok()
}

/// Whether a stored hash should be replaced by one made now: true for
/// everything but argon2id with the current default parameters.
pub fn needs_rehash(hash: &str) -> bool {
    !matches!(parse(hash), Ok(Parsed::Argon2 { current: true, .. }))
}

/// Checks `password` against a stored hash of any accepted format; a hash
/// that is not acceptable never matches.
pub fn verify(password: &[u8], hash: &str) -> bool {
    match parse(hash) {
        Ok(Parsed::Argon2 { hash, .. }) => {
            Argon2::default().verify_password(password, &hash).is_ok()
        }
        Ok(Parsed::Bcrypt(hash)) => bcrypt::verify(password, hash).unwrap_or(false),
        Ok(Parsed::Scrypt(hash)) => scrypt::Scrypt.verify_password(password, &hash).is_ok(),
        Ok(Parsed::Pbkdf2 { hash, rounds, .. }) => verify_pbkdf2(password, &hash, rounds),
        Err(_) => false,
    }
}

fn parse(hash: &str) -> Result<Parsed<'_>, HashRefusal> {
    if hash.len() > MAX_HASH_LEN {
        return Err(HashRefusal::TooLong);
    }
    if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
        return parse_bcrypt(hash);
    }
    let scheme = phc_scheme(hash).ok_or(HashRefusal::UnknownFormat)?;
    let phc = PasswordHash::new(hash).map_err(|_| HashRefusal::Malformed(scheme))?;
    let (Some(salt), Some(output)) = (phc.salt, phc.hash) else {
        return Err(HashRefusal::Malformed(scheme));
    };
    let mut salt_buf = [0u8; 64];
    let salt_len = salt
        .decode_b64(&mut salt_buf)
        .map_err(|_| HashRefusal::Malformed(scheme))?
        .len();
    match scheme {
        "argon2id" | "argon2i" | "argon2d" => {
            let params =
                argon2::Params::try_from(&phc).map_err(|_| HashRefusal::Malformed(scheme))?;
            if salt_len < argon2::MIN_SALT_LEN {
                return Err(HashRefusal::Malformed(scheme));
            }
            let version = phc
                .version
                .map(argon2::Version::try_from)
                .transpose()
                .map_err(|_| HashRefusal::Malformed(scheme))?
                .unwrap_or_default();
            bound_argon2(scheme, &params)?;
            let defaults = argon2::Params::default();
            let current = scheme == "argon2id"
                && version == argon2::Version::V0x13
                && params.m_cost() == defaults.m_cost()
                && params.t_cost() == defaults.t_cost()
                && params.p_cost() == defaults.p_cost()
                && params.keyid().is_empty()
                && params.data().is_empty()
                && output.len() == argon2::Params::DEFAULT_OUTPUT_LEN;
            Ok(Parsed::Argon2 {
                hash: phc,
                scheme,
                current,
            })
        }
        "scrypt" => {
            let params =
                scrypt::Params::try_from(&phc).map_err(|_| HashRefusal::Malformed(scheme))?;
            bound_scrypt(&params)?;
            Ok(Parsed::Scrypt(phc))
        }
        _ => {
            // PBKDF2's own parameter parsing takes a missing `i` as 600,000
            // rounds and a missing `l` as 32 bytes: require the rounds, and
            // take the length from the hash itself (`l`, if given, must agree).
            let params =
                pbkdf2::Params::try_from(&phc).map_err(|_| HashRefusal::Malformed(scheme))?;
            let has_rounds = phc.params.iter().any(|(name, _)| name.as_str() == "i");
            if !has_rounds || params.rounds == 0 {
                return Err(HashRefusal::Malformed(scheme));
            }
            if params.rounds > MAX_PBKDF2_ROUNDS {
                return Err(HashRefusal::TooCostly {
                    scheme,
                    limit: "at most 10,000,000 iterations",
                });
            }
            Ok(Parsed::Pbkdf2 {
                rounds: params.rounds,
                hash: phc,
                scheme,
            })
        }
    }
}

/// The PHC identifier of an accepted PHC scheme, `$<id>$…`.
fn phc_scheme(hash: &str) -> Option<&'static str> {
    let id = hash.strip_prefix('$')?.split('$').next()?;
    [
        "argon2id",
        "argon2i",
        "argon2d",
        "scrypt",
        "pbkdf2",
        "pbkdf2-sha256",
        "pbkdf2-sha512",
    ]
    .into_iter()
    .find(|known| *known == id)
    .map(|known| {
        if known == "pbkdf2" {
            "pbkdf2-sha1"
        } else {
            known
        }
    })
}

/// `$2b$12$` + 22 characters of salt + 31 of hash, in bcrypt's base64.
fn parse_bcrypt(hash: &str) -> Result<Parsed<'_>, HashRefusal> {
    const MALFORMED: HashRefusal = HashRefusal::Malformed("bcrypt");
    let rest = &hash[4..];
    let (cost, encoded) = rest.split_once('$').ok_or(MALFORMED)?;
    if cost.len() != 2 || !cost.bytes().all(|b| b.is_ascii_digit()) || encoded.len() != 53 {
        return Err(MALFORMED);
    }
    let cost: u32 = cost.parse().map_err(|_| MALFORMED)?;
    if cost < 4 {
        return Err(MALFORMED);
    }
    if cost > MAX_BCRYPT_COST {
        return Err(HashRefusal::TooCostly {
            scheme: "bcrypt",
            limit: "a cost of at most 16",
        });
    }
    let bcrypt64 = base64::engine::GeneralPurpose::new(
        &base64::alphabet::BCRYPT,
        base64::engine::general_purpose::NO_PAD,
    );
    let (salt, digest) = encoded.split_at(22);
    let salt_ok = bcrypt64.decode(salt).is_ok_and(|s| s.len() == 16);
    let digest_ok = bcrypt64.decode(digest).is_ok_and(|d| d.len() == 23);
    if !(salt_ok && digest_ok) {
        return Err(MALFORMED);
    }
    Ok(Parsed::Bcrypt(hash))
}

fn bound_argon2(scheme: &'static str, params: &argon2::Params) -> Result<(), HashRefusal> {
    let (m_kib, t, p) = (u64::from(params.m_cost()), params.t_cost(), params.p_cost());
    let too_costly = |limit| Err(HashRefusal::TooCostly { scheme, limit });
    if m_kib * 1024 > MAX_HASH_MEMORY {
        return too_costly("at most 256 MiB of memory (m=262144)");
    }
    if t > MAX_ARGON2_T || p > MAX_ARGON2_P {
        return too_costly("at most 16 passes (t) and 16 lanes (p)");
    }
    if m_kib * u64::from(t) > MAX_ARGON2_WORK {
        return too_costly("m × t at most 1048576");
    }
    Ok(())
}

fn bound_scrypt(params: &scrypt::Params) -> Result<(), HashRefusal> {
    let too_costly = |limit| {
        Err(HashRefusal::TooCostly {
            scheme: "scrypt",
            limit,
        })
    };
    if params.log_n() > MAX_SCRYPT_LOG_N {
        return too_costly("ln at most 20");
    }
    let (n, r, p) = (
        1u64 << params.log_n(),
        u64::from(params.r()),
        u64::from(params.p()),
    );
    if 128 * r * n > MAX_HASH_MEMORY {
        return too_costly("at most 256 MiB of memory (128·r·2^ln)");
    }
    if n * r * p > MAX_SCRYPT_WORK {
        return too_costly("2^ln·r·p at most 4194304");
    }
    Ok(())
}

/// PBKDF2 with the hash's own rounds and output length (see `parse`).
fn verify_pbkdf2(password: &[u8], hash: &PasswordHash<'_>, rounds: u32) -> bool {
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let params = pbkdf2::Params {
        rounds,
        output_length: expected.len(),
    };
    let ident: Ident<'_> = hash.algorithm;
    match pbkdf2::Pbkdf2.hash_password_customized(password, Some(ident), None, params, salt) {
        Ok(computed) => computed.hash.is_some_and(|c: Output| c == expected),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hashes of "hunter2 hunter2" made by reference tools (Python's bcrypt,
    // Apache's htpasswd, argon2-cffi, and hashlib written as PHC strings; see
    // tests/fixtures/make_legacy_users.py), never by the crates under test.
    const BCRYPT: &str = "$2b$04$QW8zP.u14nUwHVOgAgVIWu/6xRpghzS/QEiyP140Nuoy6SmSR4FkC";
    const REFERENCE: [(&str, &str); 8] = [
        ("bcrypt", BCRYPT),
        (
            "bcrypt",
            "$2y$04$j.d/RZHN0cX3NGxMxWLpvulPmp.LN6j/nnQM9DgnjdoQlJ3ggI/RS",
        ),
        (
            "argon2i",
            "$argon2i$v=19$m=1024,t=2,p=1$vqz8lyVaUpqyFJk+BSsLfg$Dv4s++GwIlEuC4AlNOHRXR5r3InEMfjvpuxoUF5ZR6Q",
        ),
        (
            "argon2d",
            "$argon2d$v=19$m=1024,t=2,p=1$NNcK22/j+T02bQd2HmOyVw$s+OQ2t/fE5/V5zUtsVIWPuj80iChig0KnfZCYa4zlgU",
        ),
        (
            "scrypt",
            "$scrypt$ln=4,r=8,p=1$e3rnVDIIWqcYJFYLs3vgCw$JL0eXUpCyzS28/hUUxZib06a+rWrTWi7BLTjGXH51DM",
        ),
        (
            "pbkdf2-sha256",
            "$pbkdf2-sha256$i=1000,l=32$xK8Al1FbzQZ7iwIVC+rycQ$Djon1e0T5R+crQc39tEPeIG+pnd7nB1hy3lxyVPYCcE",
        ),
        (
            "pbkdf2-sha512",
            "$pbkdf2-sha512$i=1000$GqLOjAU2URrp9St4bfl7Fw$K3I5Ufxq+NHz0+n9yDfOnk2hrxluDVQ81yIvywp4CWJaxA/O2QuXny4tLV6reP8nA1pNIxsfpA8+WWic76cr1A",
        ),
        (
            "pbkdf2-sha1",
            "$pbkdf2$i=1000,l=20$3nKQqr81JcqCoFxqE+fWhg$JshwS7VOxyxTuj44Jzai7nnlc9g",
        ),
    ];

    #[test]
    fn reference_hashes_of_every_format_verify_and_need_a_rehash() {
        for (expected, hash) in REFERENCE {
            assert_eq!(scheme(hash), Ok(expected), "{hash}");
            assert!(verify(b"hunter2 hunter2", hash), "{hash}");
            assert!(!verify(b"hunter2 hunter3", hash), "{hash}");
            assert!(!verify(b"", hash), "{hash}");
            assert!(needs_rehash(hash), "{hash}");
        }
    }

    #[test]
    fn the_engines_own_hash_needs_no_rehash_and_others_do() {
        let salt = argon2::password_hash::SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").unwrap();
        let own = Argon2::default()
            .hash_password(b"hunter2 hunter2", &salt)
            .unwrap()
            .to_string();
        assert!(verify(b"hunter2 hunter2", &own));
        assert!(!needs_rehash(&own));
        let stronger = own.replace("m=19456", "m=65536");
        assert_eq!(scheme(&stronger), Ok("argon2id"));
        assert!(needs_rehash(&stronger));
        assert!(needs_rehash(BCRYPT));
    }

    #[test]
    fn costs_beyond_the_bounds_are_refused() {
        let costly = BCRYPT.replace("$04$", "$17$");
        assert!(matches!(
            scheme(&costly),
            Err(HashRefusal::TooCostly { .. })
        ));
        assert!(!verify(b"hunter2 hunter2", &costly));
        for hash in [
            "$scrypt$ln=21,r=8,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$scrypt$ln=17,r=8,p=8$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$pbkdf2-sha256$i=10000001,l=12$c29tZXNhbHQ$aGFzaGhhc2hoYXNo",
            "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=65536,t=17,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            assert!(
                matches!(scheme(hash), Err(HashRefusal::TooCostly { .. })),
                "{hash}: {:?}",
                scheme(hash)
            );
        }
    }

    #[test]
    fn malformed_and_unknown_hashes_are_refused() {
        for (hash, refusal) in [
            ("", HashRefusal::UnknownFormat),
            ("plaintext", HashRefusal::UnknownFormat),
            ("$1$abc$def", HashRefusal::UnknownFormat),
            ("$2x$10$abc", HashRefusal::UnknownFormat),
            ("$2b$12$short", HashRefusal::Malformed("bcrypt")),
            ("$argon2id$v=19$m=65536", HashRefusal::Malformed("argon2id")),
            (
                "$scrypt$ln=4,r=8,p=1$!!!!$aGFzaGhhc2hoYXNoaGFzaA",
                HashRefusal::Malformed("scrypt"),
            ),
            (
                "$pbkdf2-sha256$l=12$c29tZXNhbHQ$aGFzaGhhc2hoYXNo",
                HashRefusal::Malformed("pbkdf2-sha256"),
            ),
        ] {
            assert_eq!(scheme(hash), Err(refusal), "{hash}");
            assert!(!verify(b"anything", hash));
        }
        assert_eq!(scheme(&"$".repeat(600)), Err(HashRefusal::TooLong));
    }
}
