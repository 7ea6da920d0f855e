#!/usr/bin/env bash
# Builds the four sample drivers in Release and lays out one signed package per driver under drivers/out/NAME/:
# manifest.json, the driver's assembly, and signature.json made with the DEVELOPMENT key drivers/dev-signing-key.pem.
# Palisade.Api.dll is not in a package: the kernel supplies its own copy, which is how a driver's API types unify
# with the kernel's. Run from anywhere; ./palisade and ./test.sh run it after building the CLI.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out="$here/out"
key="$here/dev-signing-key.pem"
cli="$root/src/Palisade.Cli/bin/Release/net10.0/palisade.dll"

# Each driver's manifest.json lives beside its project (the tests load the same manifests); NAME is its "name".
drivers=(
  "antivirus|Palisade.Drivers.Antivirus"
  "firewall|Palisade.Drivers.Firewall"
  "appcontrol|Palisade.Drivers.AppControl"
  "selfprotect|Palisade.Drivers.SelfProtection"
)

if [ ! -f "$cli" ]; then
  dotnet build "$root/src/Palisade.Cli/Palisade.Cli.csproj" -c Release -nologo -v q
fi

# One build of the four projects (a solution filter), rather than four builds that each re-check the API.
dotnet build "$here/Palisade.Drivers.slnf" -c Release -nologo -v q
rm -rf "$out"
mkdir -p "$out"
for entry in "${drivers[@]}"; do
  IFS='|' read -r name project <<<"$entry"
  bin="$here/$project/bin/Release/net10.0"
  package="$out/$name"
  mkdir -p "$package"
  cp "$bin/$project.dll" "$package/"
  if [ -e "$bin/Palisade.Api.dll" ]; then
    echo "build.sh: $bin holds a copy of Palisade.Api.dll; the driver must reference it with Private=false" >&2
    exit 1
  fi

  cp "$here/$project/manifest.json" "$package/manifest.json"
  dotnet "$cli" driver sign "$package" --key "$key"
done
echo "packages in $out (signed with the development key; trust $key.pub to load them)"
