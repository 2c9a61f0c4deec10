# shellcheck shell=bash
# Sourced by scripts/test-deps.sh.
# patchelf 0.18 (sid), the C++ runtime shipped beside the executable (bullseye), and a
# glibc-only root file system for the chroot test (bookworm libc6).
dep_sea() {
  local dest=$CACHE/sea
  if [ ! -e "$dest/.complete" ]; then
    # patchelf 0.14 (bookworm) corrupts SEA binaries; 0.18 (sid) needs sid's glibc, run via its loader.
    fetch_debs sid "$dest/sid" patchelf libc6
    # The libraries shipped beside the executable, and the glibc-only root for the chroot test.
    fetch_debs bullseye "$dest/libs" libstdc++6 libgcc-s1
    fetch_debs bookworm "$dest/glibc-root" libc6
    rm -rf "$dest/glibc-root/usr/share"
    touch "$dest/.complete"
  fi
}
