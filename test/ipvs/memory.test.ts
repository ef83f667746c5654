// The contract suite against the in-memory backend.
import t from 'tap';
import { MemoryBackend } from '../../src/ipvs/memory.js';
import { SYNC_IF, contract } from './contract.js';

contract(t, () => Promise.resolve(new MemoryBackend({ interfaces: ['lo', SYNC_IF] })));
