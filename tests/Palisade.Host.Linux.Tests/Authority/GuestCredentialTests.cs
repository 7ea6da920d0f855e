namespace Palisade.Host.Linux.Tests.Authority;

/// <summary>
/// The supervisor performs opens and path operations with the guest's credentials as they are at each call: a guest
/// that dropped its privileges does not get them back through the supervisor, and what it creates is its own.
/// </summary>
public sealed class GuestCredentialTests : IDisposable
{
    private readonly Guest _guest = new();

    public GuestCredentialTests() => File.SetUnixFileMode(_guest.Directory, (UnixFileMode)Octal("777"));

    [RootFact("setpriv")]
    public void A_guest_that_dropped_to_uid_65534_cannot_read_a_root_only_file()
    {
        File.WriteAllText(_guest.PathOf("secret"), "root only\n");
        File.SetUnixFileMode(_guest.PathOf("secret"), UnixFileMode.UserRead | UnixFileMode.UserWrite);

        int status = _guest.Shell(Guest.DenyMarker(), "setpriv --reuid=65534 --regid=65534 --clear-groups cat secret > out 2> err");

        Assert.Equal(1, status);
        Assert.Contains("Permission denied", File.ReadAllText(_guest.PathOf("err")));
    }

    [RootFact("setpriv", "stat")]
    public void A_file_a_guest_creates_belongs_to_the_guest()
    {
        int status = _guest.Shell(Guest.DenyMarker(), "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'echo made > mine' && stat -c %u:%g mine > owner");

        Assert.Equal(0, status);
        Assert.Equal("65534:65534", File.ReadAllText(_guest.PathOf("owner")).Trim());
    }

    [RootFact("setpriv")]
    public void A_guest_that_dropped_to_uid_65534_cannot_remove_a_root_owned_file_from_a_sticky_directory()
    {
        Directory.CreateDirectory(_guest.PathOf("sticky"));
        File.SetUnixFileMode(_guest.PathOf("sticky"), (UnixFileMode)Octal("1777"));
        File.WriteAllText(_guest.PathOf("sticky/roots"), "root's\n");

        int status = _guest.Shell(Guest.DenyMarker(), "setpriv --reuid=65534 --regid=65534 --clear-groups rm -f sticky/roots 2> err");

        Assert.NotEqual(0, status);
        Assert.True(File.Exists(_guest.PathOf("sticky/roots")), "the root-owned file is still there");
        Assert.Contains("Operation not permitted", File.ReadAllText(_guest.PathOf("err")));
    }

    [RootFact("gcc")]
    public void A_guest_that_changes_its_uid_mid_run_is_checked_with_the_new_one()
    {
        File.WriteAllText(_guest.PathOf("secret"), "root only\n");
        File.SetUnixFileMode(_guest.PathOf("secret"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        string probe = Guest.Probe("dropmidrun", """
            #define _GNU_SOURCE
            #include <errno.h>
            #include <fcntl.h>
            #include <stdio.h>
            #include <unistd.h>
            int main(void) {
                int before = open("secret", O_RDONLY);
                if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) { puts("setresuid failed"); return 2; }
                int after = open("secret", O_RDONLY);
                printf("%s %s\n", before >= 0 ? "opened" : "refused", after >= 0 ? "opened" : errno == EACCES ? "EACCES" : "other");
                return 0;
            }
            """) ?? throw new InvalidOperationException("gcc could not compile the probe");

        int status = _guest.Shell(Guest.DenyMarker(), $"'{probe}' > out");

        Assert.Equal(0, status);
        Assert.Equal("opened EACCES", File.ReadAllText(_guest.PathOf("out")).Trim());
    }

    private static int Octal(string digits) => Convert.ToInt32(digits, 8);

    public void Dispose() => _guest.Dispose();
}
