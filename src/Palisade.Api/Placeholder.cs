namespace Palisade.Api;
