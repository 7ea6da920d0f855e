using Palisade.Api;
using Palisade.Drivers.Antivirus;

namespace Palisade.Drivers.Tests;

/// <summary>
/// The antivirus quarantine moves only the file it scanned: the kernel's own-I/O rename is given the scanned identity and
/// acts only when the path names that file without following a symbolic link.
/// </summary>
public sealed class QuarantineTests : IDisposable
{
    private const string Eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    private readonly DriverHarness _h = new();
    private readonly string _quarantine;

    public QuarantineTests() => _quarantine = Directory.CreateDirectory(Path.Combine(_h.Home, "quarantine")).FullName;

    public void Dispose() => _h.Dispose();

    /// <summary>Starts a driver that only keeps its context, for the kernel's own I/O on no filter's behalf.</summary>
    private IFilterManager Files()
    {
        var driver = new ContextDriver();
        Assert.Equal(Status.Success, _h.Start(driver, "own-io"));
        return driver.Context!.Files;
    }

    [Fact]
    public void A_path_through_a_symbolic_link_moves_nothing()
    {
        Assert.Equal(Status.Success, _h.Start(new AntivirusDriver(), "antivirus", ("quarantine", _quarantine)));
        string folder = Directory.CreateDirectory(Path.Combine(_h.Files, "protected", "inner")).Parent!.FullName;
        string target = Path.Combine(folder, "target");
        File.WriteAllText(target, Eicar);
        string work = Directory.CreateDirectory(Path.Combine(_h.Files, "work")).FullName;
        File.CreateSymbolicLink(Path.Combine(work, "l"), Path.Combine(folder, "inner"));

        Assert.Equal(Status.AccessDenied, _h.Open(Path.Combine(work, "l", "..", "target")));

        Assert.True(File.Exists(target));
        Assert.Empty(Directory.GetFiles(_quarantine));
        Assert.Contains("quarantine failed: FileIdentityMismatch", Assert.Single(_h.Events("detection")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_name_swapped_to_another_file_after_the_scan_moves_nothing()
    {
        IFilterManager files = Files();
        string path = _h.WriteFile("infected", Eicar);
        FileIdentity scanned = DriverHarness.IdentityOf(path);
        File.Move(path, Path.Combine(_h.Files, "elsewhere"));
        File.WriteAllText(path, "an innocent file now at that name");

        Assert.Equal(Status.FileIdentityMismatch, Quarantine.Move(files, default, _quarantine, path, scanned, out string? destination));

        Assert.Null(destination);
        Assert.Equal("an innocent file now at that name", File.ReadAllText(path));
        Assert.Empty(Directory.GetFiles(_quarantine));
    }

    [Fact]
    public void The_scanned_file_at_its_own_name_is_quarantined()
    {
        IFilterManager files = Files();
        string path = _h.WriteFile("infected", Eicar);

        Assert.Equal(Status.Success, Quarantine.Move(files, default, _quarantine, path, DriverHarness.IdentityOf(path), out string? destination));

        Assert.False(File.Exists(path));
        Assert.Equal(Path.Combine(_quarantine, Path.GetFileName(destination!)), destination);
        Assert.Equal(Eicar, File.ReadAllText(destination!));
    }

    [Fact]
    public void A_delete_of_a_name_that_names_another_file_deletes_nothing()
    {
        IFilterManager files = Files();
        string decided = _h.WriteFile("decided", "one");
        string other = _h.WriteFile("other", "two");

        Assert.Equal(Status.FileIdentityMismatch, files.DeleteFile(default, other, DriverHarness.IdentityOf(decided)));
        Assert.Equal(Status.Success, files.DeleteFile(default, decided, DriverHarness.IdentityOf(decided)));

        Assert.True(File.Exists(other));
        Assert.False(File.Exists(decided));
    }

    private sealed class ContextDriver : IDriver
    {
        public IDriverContext? Context { get; private set; }

        public Status Load(IDriverContext context)
        {
            Context = context;
            return Status.Success;
        }

        public void Unload() => Context = null;
    }
}
