#!/usr/bin/env bash
# Builds the attack drivers in Release and lays out one signed package per attack under attacks/out/NAME/: the
# manifest (attacks/PROJECT/NAME.manifest.json), the project's assembly, and signature.json made with the
# DEVELOPMENT key drivers/dev-signing-key.pem. Several attacks may share one assembly (one entry type each).
# They are signed --unverified: the driver verifier refuses every one of them, so the protected flavor refuses them
# at load (the tests check it, rule by rule) and only the compat flavor loads them. The guard tests start them
# in-process, as code that got past the verifier would run. Run from anywhere; ./test.sh runs it after building the CLI.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out="$here/out"
key="$root/drivers/dev-signing-key.pem"
cli="$root/src/Palisade.Cli/bin/Release/net10.0/palisade.dll"

if [ ! -f "$cli" ]; then
  dotnet build "$root/src/Palisade.Cli/Palisade.Cli.csproj" -c Release -nologo -v q
fi

dotnet build "$here/Palisade.Attacks.slnf" -c Release -nologo -v q
rm -rf "$out"
mkdir -p "$out"
for manifest in "$here"/Palisade.Attacks.*/*.manifest.json; do
  project=$(basename "$(dirname "$manifest")")
  name=$(basename "$manifest" .manifest.json)
  bin="$here/$project/bin/Release/net10.0"
  if [ -e "$bin/Palisade.Api.dll" ]; then
    echo "build.sh: $bin holds a copy of Palisade.Api.dll; attacks must reference it with Private=false" >&2
    exit 1
  fi

  package="$out/$name"
  mkdir -p "$package"
  cp "$bin/$project.dll" "$package/"
  cp "$manifest" "$package/manifest.json"
  dotnet "$cli" driver sign "$package" --key "$key" --unverified >/dev/null
done
echo "attack packages in $out (signed with the development key)"
