namespace Palisade.Cli.Tests;

/// <summary>The generated API reference (<c>palisade api show</c>, the pages of docs/api) says what a driver needs to use each type.</summary>
public sealed class ApiCommandTests
{
    [Fact]
    public void A_flags_enum_is_marked_as_flags_and_each_member_shows_its_bits()
    {
        ProcessResult shown = ProcessRunner.Palisade("api", "show", "ProcessAccessRights");

        Assert.Equal(0, shown.ExitCode);
        Assert.Contains("ProcessAccessRights (flags enum)", shown.Stdout, StringComparison.Ordinal);
        Assert.Contains("ProcessAccessRights.Terminate = 0x1", shown.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void An_enum_without_flags_is_a_plain_enum_without_values()
    {
        ProcessResult shown = ProcessRunner.Palisade("api", "show", "ProductState");

        Assert.Equal(0, shown.ExitCode);
        Assert.Contains("ProductState (enum)", shown.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("ProductState.On =", shown.Stdout, StringComparison.Ordinal);
    }
}
