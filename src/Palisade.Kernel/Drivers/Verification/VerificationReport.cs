namespace Palisade.Kernel.Drivers.Verification;

/// <summary>
/// One thing the verifier refuses: what is used (a member, a type, or an IL instruction with its offset), where (the
/// method, type or attribute that uses it), in which assembly of the package, and the rule.
/// </summary>
/// <param name="Rule">The rule that refuses it.</param>
/// <param name="Member">What is used, for example <c>System.Reflection.FieldInfo.SetValue</c>.</param>
/// <param name="Location">Where, for example <c>Rootkit.Patch</c>, or <c>Rootkit (base type)</c>.</param>
/// <param name="Assembly">The package file, for example <c>Contoso.Antivirus.dll</c>.</param>
internal sealed record VerifierFinding(VerifierRule Rule, string Member, string Location, string Assembly)
{
    /// <summary>The finding as one line: <c>refused: MEMBER in LOCATION (rule ID NAME)</c>.</summary>
    public override string ToString() => $"refused: {Member} in {Location} (rule {Rule.Id} {Rule.Name})";
}

/// <summary>What the verifier found in a package: nothing when the package may run inside the kernel.</summary>
internal sealed class VerificationReport
{
    public VerificationReport(IReadOnlyList<VerifierFinding> findings, IReadOnlyList<string> assemblies)
    {
        Findings = findings;
        Assemblies = assemblies;
    }

    /// <summary>Every finding, in the order of the package's assemblies and their metadata.</summary>
    public IReadOnlyList<VerifierFinding> Findings { get; }

    /// <summary>The package files that were verified.</summary>
    public IReadOnlyList<string> Assemblies { get; }

    /// <summary>True when nothing was refused.</summary>
    public bool IsClean => Findings.Count == 0;

    /// <summary>The first finding and how many more there are, for a load refusal.</summary>
    public string Summary()
    {
        if (IsClean)
        {
            return "verified: no finding";
        }

        VerifierFinding first = Findings[0];
        string more = Findings.Count == 1 ? "" : $" (and {Findings.Count - 1} more: `palisade driver verify` lists them)";
        return $"{first.Assembly}: {first}{more}";
    }
}
