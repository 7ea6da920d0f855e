namespace Palisade.EndToEnd.Tests;

/// <summary>
/// "A guest can do under Palisade exactly what Linux would let it do without Palisade, minus what the drivers deny":
/// each scenario runs natively and under <c>palisade run</c> with the four sample drivers (which deny nothing here), and
/// must end the same — the same errno for each call, the same owner, mode and content of what it made. The supervisor
/// performs these calls itself, so each proves it acted with the guest's credentials, groups, capabilities, umask,
/// root, mount and user namespaces and Landlock sandbox, not its own.
/// </summary>
public sealed class GuestAuthorityTests : IDisposable
{
    private const string Nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups";
    private readonly Parity _p = new();
    private readonly string _fsops = Parity.Probe("fsops");

    public void Dispose() => _p.Dispose();

    [RootFact("setpriv")]
    public void Uid_65534_cannot_read_a_root_only_file()
    {
        _p.Layout(dir => Secret(dir, "secret", "600"));

        _p.Same($"{Nobody} {_fsops} read secret; {Nobody} cat secret; echo status $?");
    }

    [RootFact("setpriv")]
    public void Uid_65534_cannot_write_into_a_root_owned_directory()
    {
        _p.Layout(dir => Directory.CreateDirectory(Path.Combine(dir, "roots")));

        _p.Same($"{Nobody} {_fsops} create roots/new 644; {Nobody} {_fsops} mkdir roots/sub; {Nobody} {_fsops} mknod roots/fifo; ls -A roots");
    }

    [RootFact("setpriv")]
    public void What_uid_65534_creates_is_owned_by_uid_65534()
    {
        _p.Layout(dir => Open(dir, "shared", "777"));

        _p.Same($"{Nobody} sh -c 'umask 022; echo made > shared/file; mkdir shared/dir; mkfifo shared/fifo; ln -s file shared/link'; " +
            $"for f in file dir fifo link; do {_fsops} stat shared/$f; done; cat shared/file");
    }

    [RootFact("setpriv")]
    public void A_supplementary_group_reads_a_group_only_file_and_no_group_does_not()
    {
        _p.Layout(dir =>
        {
            Secret(dir, "group-only", "040");
            Parity.Chown(Path.Combine(dir, "group-only"), 0, 4242);
        });

        _p.Same($"setpriv --reuid=65534 --regid=65534 --groups=4242 {_fsops} read group-only; {Nobody} {_fsops} read group-only");
    }

    [RootFact("setpriv")]
    public void Root_without_its_dac_capabilities_cannot_read_a_mode_000_file()
    {
        _p.Layout(dir => Secret(dir, "locked", "000"));

        _p.Same($"setpriv --inh-caps=-all --bounding-set=-dac_override,-dac_read_search {_fsops} read locked; {_fsops} read locked");
    }

    [RootFact("setpriv")]
    public void Root_without_CAP_CHOWN_and_CAP_FOWNER_cannot_give_away_or_chmod_another_users_file()
    {
        _p.Layout(dir =>
        {
            Secret(dir, "theirs", "644");
            Parity.Chown(Path.Combine(dir, "theirs"), 1000, 1000);
        });

        _p.Same($"setpriv --inh-caps=-all --bounding-set=-chown,-fowner sh -c '{_fsops} chown theirs 0 0; {_fsops} chmod theirs 600; {_fsops} fchmod theirs 600'; {_fsops} stat theirs");
    }

    [RootFact]
    public void Files_are_created_with_the_guests_umask()
    {
        _p.Same($"umask 027; : > file; mkdir dir; mkfifo fifo; {_fsops} stat file; {_fsops} stat dir; {_fsops} stat fifo");
    }

    [RootFact("setpriv")]
    public void A_setgid_directory_gives_what_is_created_in_it_its_group()
    {
        _p.Layout(dir =>
        {
            string shared = Open(dir, "team", "2777");
            Parity.Chown(shared, 0, 4242);
            File.SetUnixFileMode(shared, Parity.Mode("2777"));
        });

        _p.Same($"setpriv --reuid=65534 --regid=65534 --groups=4242 sh -c 'umask 002; : > team/file; mkdir team/dir'; {_fsops} stat team/file; {_fsops} stat team/dir");
    }

    [RootFact("setpriv")]
    public void A_sticky_directory_keeps_uid_65534_from_removing_or_renaming_roots_files()
    {
        _p.Layout(dir =>
        {
            string sticky = Open(dir, "tmp", "1777");
            File.WriteAllText(Path.Combine(sticky, "roots"), "root's\n");
        });

        _p.Same($"{Nobody} sh -c '{_fsops} unlink tmp/roots; {_fsops} rename tmp/roots tmp/mine; echo mine > tmp/own; {_fsops} unlink tmp/own'; ls -A tmp");
    }

    [RootFact("setpriv")]
    public void Uid_65534_cannot_change_a_root_owned_file_through_any_call()
    {
        _p.Layout(dir =>
        {
            Open(dir, "shared", "777");
            Secret(Path.Combine(dir, "shared"), "roots", "644");
        });

        _p.Same($"{Nobody} sh -c '" + string.Join("; ",
            $"{_fsops} write shared/roots", $"{_fsops} truncate shared/roots 0", $"{_fsops} chmod shared/roots 666",
            $"{_fsops} fchmod shared/roots 666", $"{_fsops} chown shared/roots 65534 65534", $"{_fsops} fchown shared/roots 65534 65534",
            $"{_fsops} utimens shared/roots", $"{_fsops} futimens shared/roots", $"{_fsops} setxattr shared/roots",
            $"{_fsops} fsetxattr shared/roots", $"{_fsops} punch shared/roots", $"{_fsops} link shared/roots shared/alias") + $"'; {_fsops} stat shared/roots; cat shared/roots");
    }

    [RootFact]
    public void Root_changes_its_own_file_through_every_call_with_the_same_outcome()
    {
        _p.Layout(dir => File.WriteAllText(Path.Combine(dir, "mine"), "0123456789\n"));

        _p.Same(string.Join("; ",
            $"{_fsops} chmod mine 600", $"{_fsops} fchmod mine 640", $"{_fsops} chown mine 1000 1000", $"{_fsops} fchown mine 1001 1001",
            $"{_fsops} utimens mine", $"{_fsops} setxattr mine", $"{_fsops} fsetxattr mine", $"{_fsops} removexattr mine",
            $"{_fsops} punch mine", $"{_fsops} ftruncate mine 8", $"{_fsops} truncate mine 6", $"{_fsops} link mine alias",
            $"{_fsops} mkdir dir", $"{_fsops} exchange mine dir", $"{_fsops} stat mine", $"{_fsops} stat dir", $"{_fsops} stat alias",
            "od -c alias"));
    }

    [RootFact("chroot")]
    public void A_chrooted_shell_sees_and_changes_its_own_root()
    {
        _p.Layout(MakeJail);

        _p.Same("chroot jail /bin/sh -c 'cat /etc/passwd; echo written > /tmp/x; cat /tmp/x; ls /; cd /tmp && cat x'; cat jail/tmp/x");
    }

    [RootFact("unshare", "mount")]
    public void A_private_mount_namespace_with_its_own_tmpfs_works()
    {
        _p.Layout(dir => Directory.CreateDirectory(Path.Combine(dir, "mnt")));

        _p.Same("unshare -m sh -c 'mount -t tmpfs none mnt && echo hi > mnt/x && cat mnt/x && ls mnt'; ls -A mnt");
    }

    [RootFact("unshare", "mount")]
    public void A_rootless_user_and_mount_namespace_works()
    {
        _p.Layout(dir => Directory.CreateDirectory(Path.Combine(dir, "mnt")));

        _p.Same("unshare -r -m sh -c 'id -u; mount -t tmpfs none mnt && echo hi > mnt/x && cat mnt/x; cat /proc/self/uid_map'");
    }

    [RootFact]
    public void A_Landlock_sandbox_binds_what_the_supervisor_does_for_the_guest()
    {
        string sandbox = Parity.Probe("sandbox");
        _p.Layout(dir => Secret(dir, "secret", "644"));

        // Reads are allowed below /etc, /usr and the libraries only: not this folder, and nothing may be created.
        _p.Same($"{sandbox} landlock secret new /etc /usr /lib /lib64; {sandbox} landlock /etc/hostname new2 /etc /usr /lib /lib64; ls -A");
    }

    [RootFact("setpriv")]
    public void A_Landlock_sandbox_of_an_unprivileged_guest_binds_what_the_supervisor_does_for_it()
    {
        string sandbox = Parity.Probe("sandbox");
        _p.Layout(dir =>
        {
            Open(dir, "shared", "777");
            Secret(Path.Combine(dir, "shared"), "readable", "644");
        });

        // Without CAP_SYS_ADMIN the program sets no_new_privs right before it restricts itself (a call Palisade does
        // not see): the supervisor must still mirror the sandbox.
        _p.Same($"{Nobody} {sandbox} landlock shared/readable shared/new /etc /usr /lib /lib64; ls -A shared");
    }

    [RootFact]
    public void A_guests_own_seccomp_filter_answers_before_the_supervisor_is_asked()
    {
        string sandbox = Parity.Probe("sandbox");

        _p.Same($"{sandbox} seccomp /etc/hostname");
    }

    [RootFact]
    public void A_guest_cannot_install_a_listener_of_its_own_to_answer_its_own_calls()
    {
        string sandbox = Parity.Probe("sandbox");

        ProcessResult run = _p.UnderPalisade($"{sandbox} listener", _p.Drivers);

        // Linux allows one listener in a filter chain: Palisade's. The guest's attempt is refused with EBUSY.
        Assert.Equal(0, run.ExitCode);
        Assert.Equal("listener EBUSY\n", run.Stdout);
    }

    [RootFact("setpriv", "gcc")]
    public void A_set_id_image_runs_with_its_owners_credentials()
    {
        string setuid = SetUidReader();
        _p.Layout(dir => Secret(dir, "secret", "600"));

        _p.Same($"{Nobody} {setuid} secret");
    }

    /// <summary>A set-uid root copy of a program that prints its ids and whether it can read its argument.</summary>
    private string SetUidReader()
    {
        string source = Path.Combine(_p.Run.Work, "setuid.c");
        string binary = Path.Combine(_p.Run.Work, "setuid-reader");
        File.WriteAllText(source, """
            #include <fcntl.h>
            #include <stdio.h>
            #include <unistd.h>
            int main(int argc, char **argv) { printf("%d %d %s\n", getuid(), geteuid(), open(argv[1], O_RDONLY) >= 0 ? "read" : "refused"); return 0; }
            """);
        ProcessResult gcc = ProcessRunner.Run("gcc", ["-o", binary, source], _p.Run.Work);
        Assert.True(gcc.ExitCode == 0, gcc.Stderr);
        File.SetUnixFileMode(binary, Parity.Mode("4755"));
        return binary;
    }

    private static string Secret(string dir, string name, string mode)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllText(path, "root only\n");
        File.SetUnixFileMode(path, Parity.Mode(mode));
        return path;
    }

    private static string Open(string dir, string name, string mode)
    {
        string path = Path.Combine(dir, name);
        Directory.CreateDirectory(path);
        File.SetUnixFileMode(path, Parity.Mode(mode));
        return path;
    }

    /// <summary>A root with a shell and cat, their libraries, its own /etc/passwd and a sticky /tmp.</summary>
    private static void MakeJail(string dir)
    {
        string jail = Path.Combine(dir, "jail");
        foreach (string program in new[] { "/bin/sh", "/bin/cat", "/bin/ls" })
        {
            Copy(program, jail);
            ProcessResult ldd = ProcessRunner.Run("ldd", [program], "/");
            foreach (string word in ldd.Stdout.Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries))
            {
                if (word.StartsWith('/') && File.Exists(word))
                {
                    Copy(word, jail);
                }
            }
        }

        Directory.CreateDirectory(Path.Combine(jail, "etc"));
        File.WriteAllText(Path.Combine(jail, "etc", "passwd"), "jail:x:0:0::/:/bin/sh\n");
        Open(jail, "tmp", "1777");
    }

    private static void Copy(string file, string root)
    {
        string target = root + file;
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        if (!File.Exists(target))
        {
            File.Copy(file, target);
            File.SetUnixFileMode(target, File.GetUnixFileMode(file));
        }
    }
}
