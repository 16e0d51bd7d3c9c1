# Sourced by the scripts: the repository root as the working folder, Swift on PATH.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
case ":$PATH:" in *":/opt/swift/usr/bin:"*) ;; *) [ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH" ;; esac
