# Sourced by tools/vm/fetch-kernel.sh and tools/kublk/build.sh: a PRIVATE apt configuration for one
# Debian suite, so packages of a newer suite (sid's kernel, liburing, linux-source) can be resolved
# and `apt-get download`ed without touching the host's apt sources, lists or dpkg status.
#
#   private_apt_init SUITE ROOT   writes ROOT/{sources.list,apt.conf,status,...} and exports APT_CONFIG
#   private_apt_update ROOT [FORCE] [PROBE_PKG]
#                                 apt-get update at most once a day, or when FORCE is non-empty,
#                                 or when PROBE_PKG is not known to the lists yet

private_apt_init() {
  local suite="$1" root="$2" mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  mkdir -p "$root"/{lists/partial,archives/partial,etc/sources.list.d,etc/preferences.d,etc/trusted.gpg.d}
  # Mirror: the URI the host already uses for Debian (the first one not naming -security).
  mirror="$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
  if [[ -z "$mirror" && -f /etc/apt/sources.list ]]; then
    mirror="$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list)"
  fi
  mirror="${mirror:-http://deb.debian.org/debian}"
  echo "deb [arch=amd64 signed-by=$keyring] $mirror $suite main" >"$root/sources.list"
  # Everything apt reads or writes points into the private tree; `apt-get download` and `apt-cache`
  # need no installed-package state, so the dpkg status is an empty file.
  : >"$root/status"
  cat >"$root/apt.conf" <<CONF
Dir::State "$root";
Dir::State::Lists "$root/lists";
Dir::State::status "$root/status";
Dir::Cache "$root";
Dir::Cache::archives "$root/archives";
Dir::Etc::SourceList "$root/sources.list";
Dir::Etc::SourceParts "$root/etc/sources.list.d";
Dir::Etc::Preferences "$root/etc/preferences";
Dir::Etc::PreferencesParts "$root/etc/preferences.d";
Dir::Etc::Trusted "$keyring";
Dir::Etc::TrustedParts "$root/etc/trusted.gpg.d";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
Acquire::Languages "none";
Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";
Acquire::Retries "3";
APT::Sandbox::User "$( [[ $(id -u) -eq 0 ]] && echo root || id -un )";
CONF
  export APT_CONFIG="$root/apt.conf"
  PRIVATE_APT_MIRROR="$mirror"
}

private_apt_update() {
  local root="$1" force="${2:-}" probe="${3:-}" stamp="$1/lists/.updated"
  if [[ -n "$force" || ! -f "$stamp" || -n "$(find "$stamp" -mmin +1440 2>/dev/null)" ]] ||
     { [[ -n "$probe" ]] && ! apt-cache show "$probe" >/dev/null 2>&1; }; then
    printf '[private-apt] apt-get update (%s from %s)\n' "$(awk '{print $(NF-1)}' "$root/sources.list")" "${PRIVATE_APT_MIRROR:-?}" >&2
    apt-get update -qq </dev/null
    touch "$stamp"
  fi
}
