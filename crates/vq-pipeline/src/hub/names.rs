//! The checks every name from the command line or from the server passes before it becomes part
//! of a cache path: repository ids, revisions, file names, commit hashes and etags. A hostile
//! `HF_ENDPOINT` chooses the file names of its listing and the `ETag` / `X-Repo-Commit` headers;
//! with `/`, `\` or `..` in them a path built from them would leave the cache.

use crate::hub::{HubError, NameKind};

/// The longest repository name the hub allows.
const MAX_REPO_NAME: usize = 96;
/// The longest revision accepted (branch and tag names are far shorter in practice).
const MAX_REVISION: usize = 255;
/// The longest file path inside a repository, and the longest component of one.
const MAX_FILE_NAME: usize = 1024;
const MAX_COMPONENT: usize = 255;
/// The longest etag accepted: the hub's are 40 (git blob sha1) or 64 (LFS sha256) hex digits.
const MAX_ETAG: usize = 128;

/// `owner/name` as the hub allows it (`huggingface_hub`'s `validate_repo_id`): each part of
/// ASCII letters, digits, `-`, `_` and `.`, starting and ending with a letter, digit or `_`, no
/// `--` or `..`, the name at most 96 characters and not ending in `.git`.
pub(crate) fn is_repo_id(s: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let valid = |part: &str, max: usize| {
        !part.is_empty()
            && part.len() <= max
            && part.chars().all(|c| word(c) || matches!(c, '-' | '.'))
            && part.starts_with(word)
            && part.ends_with(word)
            && !part.contains("--")
            && !part.contains("..")
    };
    match s.split_once('/') {
        Some((owner, name)) => valid(owner, MAX_REPO_NAME) && valid(name, MAX_REPO_NAME) && !name.ends_with(".git"),
        None => false,
    }
}

/// A branch, tag or commit: `/`-separated parts of ASCII letters, digits and `._+@=-`, none
/// empty or starting with `.` (which rules out `.` and `..`). The cache stores it as the file
/// `refs/<revision>`, as `huggingface_hub` does (`refs/pr/1` → `refs/refs/pr/1`).
pub(crate) fn check_revision(repo: &str, revision: &str) -> Result<(), HubError> {
    let reason = if revision.is_empty() {
        Some("it is empty".to_string())
    } else if revision.len() > MAX_REVISION {
        Some(format!("it is longer than {MAX_REVISION} bytes"))
    } else {
        revision.split('/').find_map(|part| {
            if part.is_empty() {
                Some("it has an empty `/`-separated part".to_string())
            } else if part.starts_with('.') {
                Some(format!("its part `{part}` starts with `.`"))
            } else {
                part.chars()
                    .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '@' | '=' | '-')))
                    .map(|c| format!("it contains {c:?}"))
            }
        })
    };
    refuse(repo, None, NameKind::Revision, revision, reason)
}

/// A file path of a repository listing: relative, `/`-separated, no empty, `.` or `..` part,
/// no `\` and no control character, at most 1024 bytes (255 per part).
pub(crate) fn check_file_name(repo: &str, file: &str) -> Result<(), HubError> {
    let reason = if file.is_empty() {
        Some("it is empty".to_string())
    } else if file.len() > MAX_FILE_NAME {
        Some(format!("it is longer than {MAX_FILE_NAME} bytes"))
    } else if file.starts_with('/') {
        Some("it is an absolute path".to_string())
    } else if let Some(c) = file.chars().find(|&c| c == '\\' || c.is_control()) {
        Some(format!("it contains {c:?}"))
    } else {
        file.split('/').find_map(|part| match part {
            "" => Some("it has an empty `/`-separated part".to_string()),
            "." | ".." => Some(format!("it has a `{part}` part")),
            _ if part.len() > MAX_COMPONENT => Some(format!("a part is longer than {MAX_COMPONENT} bytes")),
            _ => None,
        })
    };
    refuse(repo, Some(file), NameKind::FileName, file, reason)
}

/// Whether `s` is a full commit hash: 40 lowercase hex digits.
pub(crate) fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A commit hash from the server (`sha` of the repository info, `X-Repo-Commit`) or from a
/// `refs/` file of the cache: 40 lowercase hex digits.
pub(crate) fn check_commit(repo: &str, file: Option<&str>, commit: &str) -> Result<(), HubError> {
    let reason = (!is_commit(commit)).then(|| "a commit hash is 40 lowercase hex digits".to_string());
    refuse(repo, file, NameKind::Commit, commit, reason)
}

/// An etag without its weak-validator prefix and quotes, as `huggingface_hub` normalises it:
/// `W/"abc"` → `abc`.
pub(crate) fn normalize_etag(etag: &str) -> &str {
    let etag = etag.trim();
    etag.strip_prefix("W/").unwrap_or(etag).trim_matches('"')
}

/// A normalised etag, the name of a blob file: 1 to 128 ASCII letters, digits, `-` or `_`.
pub(crate) fn check_etag(repo: &str, file: &str, etag: &str) -> Result<(), HubError> {
    let reason = if etag.is_empty() {
        Some("it is empty".to_string())
    } else if etag.len() > MAX_ETAG {
        Some(format!("it is longer than {MAX_ETAG} bytes"))
    } else {
        etag.chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
            .map(|c| format!("it contains {c:?} (a blob name is letters, digits, `-` and `_`)"))
    };
    refuse(repo, Some(file), NameKind::Etag, etag, reason)
}

fn refuse(repo: &str, file: Option<&str>, kind: NameKind, value: &str, reason: Option<String>) -> Result<(), HubError> {
    match reason {
        None => Ok(()),
        Some(reason) => Err(HubError::UnsafeName {
            repo: repo.into(),
            file: file.map(Into::into),
            kind,
            value: value.into(),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_follow_the_hubs_rules() {
        for good in ["microsoft/vq-diffusion-ithq", "a/b", "user_1/model.v2", "o/_x_"] {
            assert!(is_repo_id(good), "{good}");
        }
        for bad in [
            "gpt2", "a/b/c", "/b", "a/", "../b", "a/..", "a/.b", "a/b-", "a/b--c", "a/b..c", "a/b.git", "a/b c",
            "a/b\\c",
        ] {
            assert!(!is_repo_id(bad), "{bad}");
        }
        assert!(is_repo_id(&format!("a/{}", "x".repeat(96))));
        assert!(!is_repo_id(&format!("a/{}", "x".repeat(97))));
    }

    #[test]
    fn revisions_cannot_climb_out_of_refs() {
        for good in ["main", "v1.0", "refs/pr/1", "0123456789abcdef0123456789abcdef01234567", "release+fp16"] {
            check_revision("a/b", good).unwrap();
        }
        for (bad, reason) in [
            ("", "empty"),
            ("..", "starts with `.`"),
            ("../../x", "starts with `.`"),
            ("a//b", "empty"),
            ("/main", "empty"),
            ("main/", "empty"),
            ("a\\b", "'\\\\'"),
            ("a b", "' '"),
            ("a\0", "'\\0'"),
        ] {
            let error = check_revision("a/b", bad).unwrap_err();
            assert!(
                matches!(&error, HubError::UnsafeName { kind: NameKind::Revision, value, .. } if value == bad),
                "{error}"
            );
            assert!(error.to_string().contains(reason), "{bad:?}: {error}");
        }
    }

    #[test]
    fn file_names_stay_inside_the_snapshot() {
        for good in ["model_index.json", "tokenizer/vocab.json", "a b/ü.json", ".gitattributes", "x/..y"] {
            check_file_name("a/b", good).unwrap();
        }
        for (bad, reason) in [
            ("../x/config.json", "`..` part"),
            ("tokenizer/../../x", "`..` part"),
            ("./config.json", "`.` part"),
            ("/etc/passwd", "absolute"),
            ("a//b", "empty"),
            ("a/", "empty"),
            ("..\\x", "'\\\\'"),
            ("a\nb", "'\\n'"),
            ("", "empty"),
        ] {
            let error = check_file_name("a/b", bad).unwrap_err();
            assert!(matches!(error, HubError::UnsafeName { kind: NameKind::FileName, .. }), "{error}");
            assert!(error.to_string().contains(reason), "{bad:?}: {error}");
        }
        check_file_name("a/b", &format!("{}x", "x/".repeat(512))).unwrap_err();
        check_file_name("a/b", &"x".repeat(256)).unwrap_err();
    }

    #[test]
    fn commits_are_forty_lowercase_hex_digits() {
        check_commit("a/b", None, "0123456789abcdef0123456789abcdef01234567").unwrap();
        for bad in [
            "0123456789ABCDEF0123456789abcdef01234567",
            "0123456789abcdef0123456789abcdef0123456",
            "0123456789abcdef0123456789abcdef012345678",
            "../../../../0123456789abcdef0123456789ab",
            "main",
        ] {
            let error = check_commit("a/b", Some("f"), bad).unwrap_err();
            assert!(matches!(error, HubError::UnsafeName { kind: NameKind::Commit, .. }), "{error}");
        }
    }

    #[test]
    fn etags_are_normalised_then_checked() {
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag(" \"0f\" "), "0f");
        check_etag("a/b", "f", normalize_etag("\"a1b2-c3_d4\"")).unwrap();
        check_etag("a/b", "f", &"f".repeat(64)).unwrap();
        for bad in ["", "../x", "a/b", "..", "a.b", "a b", &"f".repeat(129)] {
            let error = check_etag("a/b", "f", bad).unwrap_err();
            assert!(matches!(error, HubError::UnsafeName { kind: NameKind::Etag, .. }), "{bad:?}: {error}");
        }
    }
}
