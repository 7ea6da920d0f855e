// palisade driver keygen | sign | verify: the vendor's side of driver packages. Exit codes: 0 success, 1 the request
// could not be carried out (bad key file, unreadable package, a package the verifier refuses for sign, …), 2 verify
// ran and the package is not valid (a signature that does not hold, or any verifier finding).
using System.CommandLine;
using System.Security.Cryptography;
using System.Text;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Drivers.Verification;

namespace Palisade.Cli.Commands;

/// <summary>The <c>palisade driver</c> command.</summary>
internal static class DriverCommand
{
    /// <summary>Exit code for a request that could not be carried out.</summary>
    public const int Failed = 1;

    /// <summary>Exit code for a package whose signature does not hold.</summary>
    public const int NotValid = 2;

    public static Command Create()
    {
        var home = HomeOption();
        var command = new Command("driver", "Create signing keys, sign driver packages and verify them against the trust store.");
        command.Options.Add(home);
        command.Subcommands.Add(CreateKeygen());
        command.Subcommands.Add(CreateSign());
        command.Subcommands.Add(CreateVerify(home));
        return command;
    }

    /// <summary>The <c>--home DIR</c> option every package and trust command takes.</summary>
    public static Option<string?> HomeOption() => new("--home")
    {
        Description = $"Palisade's state folder (default: ${PalisadeHome.EnvironmentVariable}, else ~/.palisade); the trust store is its trust/ subfolder.",
        Recursive = true,
    };

    /// <summary>
    /// Runs a command body and turns the package tools' expected failures into a message on stderr and exit code 1.
    /// </summary>
    public static int Run(ParseResult parseResult, Func<TextWriter, int> body)
    {
        ArgumentNullException.ThrowIfNull(parseResult);
        ArgumentNullException.ThrowIfNull(body);
        TextWriter output = parseResult.InvocationConfiguration.Output;
        TextWriter error = parseResult.InvocationConfiguration.Error;
        try
        {
            return body(output);
        }
        catch (Exception e) when (e is DriverPackageException or IOException or UnauthorizedAccessException)
        {
            error.WriteLine("palisade: " + e.Message);
            return Failed;
        }
    }

    private static Command CreateKeygen()
    {
        var output = new Option<string>("--out")
        {
            Description = "The private key file to write (PEM, mode 0600); the public key goes to the same path plus .pub.",
            Required = true,
        };
        var force = new Option<bool>("--force") { Description = "Overwrite existing key files." };
        var command = new Command("keygen", "Create an ECDSA P-256 key pair for signing driver packages.") { output, force };
        command.SetAction(parseResult => Run(parseResult, writer =>
        {
            string privatePath = Path.GetFullPath(parseResult.GetRequiredValue(output));
            string publicPath = privatePath + SigningKeys.PublicKeySuffix;
            bool overwrite = parseResult.GetValue(force);
            using ECDsa key = SigningKeys.Generate();
            WriteKeyFile(privatePath, SigningKeys.ExportPrivatePem(key), UnixFileMode.UserRead | UnixFileMode.UserWrite, overwrite);
            WriteKeyFile(publicPath, SigningKeys.ExportPublicPem(key),
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, overwrite);
            writer.WriteLine($"key id:      {SigningKeys.KeyId(key)}");
            writer.WriteLine($"private key: {privatePath}");
            writer.WriteLine($"public key:  {publicPath}");
            return 0;
        }));
        return command;
    }

    private static Command CreateSign()
    {
        var package = new Argument<string>("PACKAGE") { Description = "The driver package folder (manifest.json, assemblies)." };
        var keyFile = new Option<string>("--key") { Description = "The private key file written by keygen.", Required = true };
        var unverified = new Option<bool>("--unverified")
        {
            Description = "Sign even though the driver verifier refuses the package: such a package loads only in the compat flavor.",
        };
        var command = new Command("sign", "Sign a driver package: writes signature.json over the manifest and every file. Runs the driver verifier first and refuses a package it would refuse at load.")
        {
            package, keyFile, unverified,
        };
        command.SetAction(parseResult => Run(parseResult, writer =>
        {
            string keyPath = parseResult.GetRequiredValue(keyFile);
            using ECDsa key = SigningKeys.ImportPrivatePem(File.ReadAllText(keyPath, Encoding.UTF8), keyPath);
            string packagePath = parseResult.GetRequiredValue(package);
            VerificationReport report = DriverVerifier.Verify(ReadPackage(packagePath));
            if (!report.IsClean && !parseResult.GetValue(unverified))
            {
                TextWriter error = parseResult.InvocationConfiguration.Error;
                error.WriteLine($"palisade: not signed: the driver verifier refuses {Path.GetFullPath(packagePath)}, so the protected flavor would not load it:");
                WriteFindings(error, report);
                error.WriteLine("palisade: fix the code, or sign with --unverified for a driver meant for the compat flavor only.");
                return Failed;
            }

            string keyId = PackageSignature.Sign(packagePath, key);
            writer.WriteLine($"signed {Path.GetFullPath(packagePath)} with key {keyId}");
            if (!report.IsClean)
            {
                writer.WriteLine($"unverified: {report.Findings.Count} verifier findings; the protected flavor refuses this package");
            }

            return 0;
        }));
        return command;
    }

    private static DriverPackage ReadPackage(string path) =>
        DriverPackage.TryRead(path, out DriverPackage? snapshot, out string? error) ? snapshot : throw new DriverPackageException(error);

    private static void WriteFindings(TextWriter writer, VerificationReport report)
    {
        foreach (VerifierFinding finding in report.Findings)
        {
            writer.WriteLine($"  {finding.Assembly}: {finding}");
        }
    }

    private static Command CreateVerify(Option<string?> home)
    {
        var package = new Argument<string>("PACKAGE") { Description = "The driver package folder, signed or not yet signed." };
        var command = new Command("verify",
            "Verify a driver package: its signature against the trust store (when it is signed) and its code with the driver verifier; prints the signer, the result and every verifier finding.")
        {
            package,
        };
        command.SetAction(parseResult => Run(parseResult, writer =>
        {
            TrustStore trust = TrustStore.ForHome(PalisadeHome.Resolve(parseResult.GetValue(home)));
            DriverPackage snapshot = ReadPackage(parseResult.GetRequiredValue(package));
            SignatureVerification verification = PackageSignature.Verify(snapshot, trust);
            VerificationReport report = DriverVerifier.Verify(snapshot);

            // An unsigned package is what a vendor verifies before signing it: only a signature that is there and
            // does not hold makes the package invalid.
            bool unsigned = verification.Outcome == SignatureOutcome.Unsigned;
            bool valid = (verification.IsValid || unsigned) && report.IsClean;
            string signer = verification.Signer is { } key ? $"{key.Name} ({key.KeyId})"
                : verification.KeyId is { } id ? $"{id} (not trusted)"
                : "none";
            TextWriter target = valid ? writer : parseResult.InvocationConfiguration.Error;
            target.WriteLine($"package: {snapshot.Directory}");
            target.WriteLine($"signer:  {signer}");
            target.WriteLine(unsigned
                ? "result:  unsigned: not signed yet (palisade driver sign adds the signature)"
                : $"result:  {(verification.IsValid ? "valid" : verification.Outcome.ToString())}: {verification.Message}");
            target.WriteLine(report.IsClean
                ? $"code:    verified: {report.Assemblies.Count} assemblies, no finding"
                : $"code:    refused: {report.Findings.Count} verifier findings in {report.Assemblies.Count} assemblies; the protected flavor does not load this package");
            WriteFindings(target, report);
            return valid ? 0 : NotValid;
        }));
        return command;
    }

    private static void WriteKeyFile(string path, string pem, UnixFileMode mode, bool overwrite)
    {
        if (!overwrite && File.Exists(path))
        {
            throw new DriverPackageException($"{path} already exists; use --force to overwrite it.");
        }

        // Palisade runs on Linux only; the check keeps the platform analyzer satisfied without a project-wide switch.
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("palisade runs on Linux.");
        }

        // The private key is created 0600 from the start, never briefly readable by others.
        var options = new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = mode,
        };
        using (var stream = new FileStream(path, options))
        using (var writer = new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)))
        {
            writer.Write(pem);
            writer.Write('\n');
        }

        // UnixCreateMode applies only to a new file; an overwritten key keeps no wider mode than asked for.
        File.SetUnixFileMode(path, mode);
    }
}
