namespace Palisade.Testing;

/// <summary>
/// A call made on a thread of its own, as a host thread serving a guest makes it, so that a test can hold it and observe
/// that it has not returned yet, then wait for it (without blocking on a task, which xunit refuses).
/// </summary>
internal sealed class BackgroundCall<T> : IDisposable
{
    private readonly ManualResetEventSlim _done = new(false);
    private T? _result;
    private Exception? _fault;

    public BackgroundCall(Func<T> call)
    {
        new Thread(() =>
        {
            try
            {
                _result = call();
            }
            catch (Exception e)
            {
                _fault = e;
            }

            _done.Set();
        })
        { IsBackground = true, Name = "test-background-call" }.Start();
    }

    /// <summary>True once the call returned.</summary>
    public bool IsCompleted => _done.IsSet;

    /// <summary>Waits for the call to return; false if <paramref name="timeout"/> passed first.</summary>
    public bool Wait(TimeSpan timeout) => _done.Wait(timeout);

    /// <summary>What the call returned (it must have returned; a call that threw rethrows here).</summary>
    public T Result
    {
        get
        {
            Assert.True(_done.IsSet, "the call has not returned");
            return _fault is null ? _result! : throw new InvalidOperationException("the call threw", _fault);
        }
    }

    public void Dispose() => _done.Dispose();
}
