//! Finding executables on `PATH`, the way a shell does, without running them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The first executable file called `name` in the directories of `$PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    which_in(name, std::env::var_os("PATH").as_deref()?)
}

/// The first executable file called `name` in the directories of `path_var`.
pub fn which_in(name: &str, path_var: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_executable_files_count_and_the_first_directory_wins() {
        let root = std::env::temp_dir().join(format!("xtask-which-{}", uuid::Uuid::new_v4()));
        let (a, b, c) = (root.join("a"), root.join("b"), root.join("c"));
        for dir in [&a, &b, &c] {
            std::fs::create_dir_all(dir).expect("dir");
        }
        std::fs::write(a.join("tool"), "").expect("write");
        std::fs::create_dir(b.join("tool")).expect("dir named like the tool");
        for dir in [&c, &root] {
            let file = dir.join("tool");
            std::fs::write(&file, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let path = std::env::join_paths([&a, &b, &c, &root]).expect("join");
        assert_eq!(which_in("tool", &path), Some(c.join("tool")));
        assert_eq!(which_in("other", &path), None);
        let _ = std::fs::remove_dir_all(&root);
    }
}
