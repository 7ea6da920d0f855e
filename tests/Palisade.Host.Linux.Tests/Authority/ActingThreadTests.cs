using Palisade.Host.Linux.Authority;
using Palisade.Interop;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Tests.Authority;

/// <summary>
/// The supervisor acts for a guest on one of its threads with exactly the guest's credentials and comes back: checked
/// against Linux itself (opens of root-only and mode-000 files), on dedicated threads so that the test runner's threads
/// never change.
/// </summary>
public sealed unsafe class ActingThreadTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("palisade-acting-").FullName;

    [RootFact]
    public void Acting_as_uid_65534_cannot_read_a_root_only_file_and_coming_back_can()
    {
        string secret = RootOnlyFile("secret", mode: Octal("600"));
        GuestAuthority nobody = Guest(65534, 65534, [], effective: 0);

        (long asGuest, long afterwards) = OnNewThread(() => (OpenAs(nobody, secret), OpenAs(null, secret)));

        Assert.Equal(-Errno.EACCES, asGuest);
        Assert.True(afterwards >= 0, $"the kernel's credentials came back: open gave {afterwards}");
    }

    [RootFact]
    public void Acting_changes_the_calling_thread_only()
    {
        string secret = RootOnlyFile("secret", mode: Octal("600"));
        GuestAuthority nobody = Guest(65534, 65534, [], effective: 0);
        using var inside = new ManualResetEventSlim();
        using var checkedOutside = new ManualResetEventSlim();
        long outside = 0;

        var other = new Thread(() =>
        {
            Assert.True(inside.Wait(TimeSpan.FromSeconds(30)), "the acting thread did not start acting");
            outside = OpenAs(null, secret);
            checkedOutside.Set();
        });
        other.Start();
        long asGuest = OnNewThread(() =>
        {
            var action = new BlockingOpen { Path = secret, Inside = inside, Done = checkedOutside };
            return GuestAction.Run(nobody, ref action);
        });
        other.Join();

        Assert.Equal(-Errno.EACCES, asGuest);
        Assert.True(outside >= 0, $"another thread opened as the kernel while one acted as uid 65534: {outside}");
    }

    [RootFact]
    public void Root_without_CAP_DAC_OVERRIDE_and_CAP_DAC_READ_SEARCH_cannot_read_a_mode_000_file()
    {
        string locked = RootOnlyFile("locked", mode: 0);
        ulong all = ActingCredentials.Kernel.Effective;
        ulong dropped = all & ~((1UL << ThreadCredentials.CAP_DAC_OVERRIDE) | (1UL << ThreadCredentials.CAP_DAC_READ_SEARCH));
        GuestAuthority root = Guest(0, 0, [0], dropped);

        (long asGuest, long asKernel) = OnNewThread(() => (OpenAs(root, locked), OpenAs(null, locked)));

        Assert.Equal(-Errno.EACCES, asGuest);
        Assert.True(asKernel >= 0, $"the kernel reads it with its capabilities: {asKernel}");
    }

    [RootFact]
    public void Supplementary_groups_grant_what_they_grant_to_the_guest()
    {
        string groupFile = RootOnlyFile("group-readable", mode: Octal("040"));
        File.SetUnixFileMode(groupFile, UnixFileMode.GroupRead);
        Chown(groupFile, 0, 4242);
        GuestAuthority member = Guest(65534, 65534, [4242], effective: 0);
        GuestAuthority outsider = Guest(65534, 65534, [], effective: 0);

        (long asMember, long asOutsider) = OnNewThread(() => (OpenAs(member, groupFile), OpenAs(outsider, groupFile)));

        Assert.True(asMember >= 0, $"a member of group 4242 reads a group-readable file: {asMember}");
        Assert.Equal(-Errno.EACCES, asOutsider);
    }

    [RootFact]
    public void An_action_that_throws_leaves_the_thread_with_the_kernel_credentials()
    {
        string secret = RootOnlyFile("secret", mode: Octal("600"));
        GuestAuthority nobody = Guest(65534, 65534, [], effective: 0);

        (long afterwards, ActingCredentials current) = OnNewThread(() =>
        {
            var throwing = new ThrowingAction();
            Assert.Throws<InvalidOperationException>(() => GuestAction.Run(nobody, ref throwing));
            return (OpenAs(null, secret), ActingThread.Current);
        });

        Assert.True(afterwards >= 0, $"the thread came back to the kernel's credentials after the throw: {afterwards}");
        Assert.Same(ActingCredentials.Kernel, current);
    }

    [RootFact]
    public void A_thread_that_acted_for_one_guest_acts_for_the_next_with_the_next_guests_credentials()
    {
        string mine = RootOnlyFile("owned-by-1000", mode: Octal("600"));
        Chown(mine, 1000, 1000);
        GuestAuthority owner = Guest(1000, 1000, [], effective: 0);
        GuestAuthority other = Guest(1001, 1001, [], effective: 0);

        (long first, long second, long third) = OnNewThread(() => (OpenAs(owner, mine), OpenAs(other, mine), OpenAs(owner, mine)));

        Assert.True(first >= 0, $"the owner opens its file: {first}");
        Assert.Equal(-Errno.EACCES, second);
        Assert.True(third >= 0, $"the owner again: {third}");
    }

    private static int Octal(string digits) => Convert.ToInt32(digits, 8);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static GuestAuthority Guest(uint uid, uint gid, uint[] groups, ulong effective) =>
        new(new Requester(1, 1) { UserId = (int)uid }, ActingCredentials.Intern(uid, gid, groups, effective), kernelRoot: true, umask: 0022);

    private string RootOnlyFile(string name, int mode)
    {
        string path = Path.Combine(_directory, name);
        File.WriteAllText(path, "root only\n");
        File.SetUnixFileMode(path, (UnixFileMode)mode);
        File.SetUnixFileMode(_directory, (UnixFileMode)Octal("755"));
        return path;
    }

    private static void Chown(string path, uint uid, uint gid)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes)
        {
            Assert.Equal(0, Libc.FChownAt(Libc.AT_FDCWD, p, uid, gid, 0));
        }
    }

    /// <summary>Opens read-only as <paramref name="guest"/>, or as the kernel when null; the descriptor is closed. fd or -errno.</summary>
    private static long OpenAs(GuestAuthority? guest, string path)
    {
        var open = new OpenAction { Path = path };
        long fd = guest is null ? open.Run() : GuestAction.Run(guest, ref open);
        if (fd >= 0)
        {
            Libc.CloseOwned((int)fd);
        }

        return fd;
    }

    /// <summary>Runs <paramref name="work"/> on a new thread prepared to act (its own fs context), and returns its result.</summary>
    private static T OnNewThread<T>(Func<T> work)
    {
        T result = default!;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            ActingThread.Prepare();
            try
            {
                result = work();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        return failure is null ? result : throw new InvalidOperationException("the acting thread failed", failure);
    }

    private struct OpenAction : IGuestAction
    {
        public string Path;

        public readonly long Run()
        {
            byte[] bytes = System.Text.Encoding.UTF8.GetBytes(Path + "\0");
            fixed (byte* p = bytes)
            {
                int fd = Libc.OpenAt(Libc.AT_FDCWD, p, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
                return fd < 0 ? -Libc.LastError : fd;
            }
        }
    }

    /// <summary>Opens as the guest, then holds the thread in the guest's credentials until another thread has checked its own.</summary>
    private struct BlockingOpen : IGuestAction
    {
        public string Path;
        public ManualResetEventSlim Inside;
        public ManualResetEventSlim Done;

        public readonly long Run()
        {
            long fd = new OpenAction { Path = Path }.Run();
            if (fd >= 0)
            {
                Libc.CloseOwned((int)fd);
            }

            Inside.Set();
            Assert.True(Done.Wait(TimeSpan.FromSeconds(30)), "the other thread did not check");
            return fd;
        }
    }

    private struct ThrowingAction : IGuestAction
    {
        public readonly long Run() => throw new InvalidOperationException("an action that fails");
    }
}
