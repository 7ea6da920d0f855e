namespace Palisade.Host.Linux.Tests;

public sealed class LifetimeTests : IDisposable
{
    private readonly Guest _guest = new();

    [Fact]
    public void Exit_status_passes_through()
    {
        Assert.Equal(42, _guest.Shell(Guest.DenyMarker(), "exit 42"));
    }

    [Fact]
    public void Death_by_signal_is_reported_as_128_plus_the_signal()
    {
        Assert.Equal(128 + 9, _guest.Shell(Guest.DenyMarker(), "kill -9 $$"));
    }

    [Fact]
    public void Denied_exec_fails_with_permission_denied()
    {
        File.Copy("/bin/true", _guest.PathOf("SECRET-tool"));
        File.SetUnixFileMode(_guest.PathOf("SECRET-tool"), (UnixFileMode)0x1ed);

        int status = _guest.Shell(Guest.DenyMarker(), "./SECRET-tool 2> err.txt");

        Assert.Equal(126, status);
    }

    [Fact]
    public void Allowed_exec_of_a_child_program_runs_it()
    {
        int status = _guest.Shell(Guest.DenyMarker(), "/bin/echo child > out.txt");

        Assert.Equal(0, status);
        Assert.Equal("child\n", File.ReadAllText(_guest.PathOf("out.txt")));
    }

    [Fact]
    public void Denied_unlink_leaves_the_file()
    {
        File.WriteAllText(_guest.PathOf("SECRET.txt"), "keep\n");

        int status = _guest.Shell(Guest.DenyMarker(), "rm -f SECRET.txt");

        Assert.NotEqual(0, status);
        Assert.True(File.Exists(_guest.PathOf("SECRET.txt")));
    }

    [Fact]
    public void Allowed_rename_is_performed()
    {
        File.WriteAllText(_guest.PathOf("a.txt"), "moved\n");

        int status = _guest.Shell(Guest.DenyMarker(), "mv a.txt b.txt");

        Assert.Equal(0, status);
        Assert.Equal("moved\n", File.ReadAllText(_guest.PathOf("b.txt")));
    }

    public void Dispose() => _guest.Dispose();
}
