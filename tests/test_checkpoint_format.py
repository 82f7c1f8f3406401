"""The checkpoint writing and reading paths: digest styles, torch's CRC option, mapped loads."""

import os
import zlib

import pytest
import torch

import trialbench
from trialbench import plaindata, safeio
from trialbench.errors import CheckpointCorruptError

from conftest import guide_data, guide_trial


def trained(tmp_path):
    trial = guide_trial().with_train_generator(guide_data(n=16, batch_size=4))
    trial.run(1)
    return trial


def test_digest_is_adler32_and_old_crc32_digests_still_verify(tmp_path):
    payload = {'w': torch.arange(6.0), 'n': 3}
    new = plaindata.digest(payload)
    assert new.startswith('adler32:') and len(new) == len('adler32:') + 8
    old = plaindata._checksum(payload, zlib.crc32, 0)  # how files written before were digested
    assert plaindata.digest_matches(payload, new) and plaindata.digest_matches(payload, old)
    changed = {'w': torch.arange(6.0) + 1, 'n': 3}
    assert not plaindata.digest_matches(changed, new)
    assert not plaindata.digest_matches(changed, old)
    assert not plaindata.digest_matches(payload, None)

    sd = trained(tmp_path).state_dict()
    sd.pop('digest')
    path = tmp_path / 'old.pt'
    torch.save({**sd, 'digest': plaindata._checksum(sd, zlib.crc32, 0)}, path)
    assert trialbench.load_checkpoint(path)['kind'] == 'trial'
    guide_trial().load(path)
    torch.save({**sd, 'digest': plaindata._checksum(sd, zlib.crc32, 0) ^ 1}, path)
    with pytest.raises(CheckpointCorruptError, match='digest'):
        guide_trial().load(path)


def test_save_restores_torchs_crc_option(tmp_path):
    assert torch.serialization.get_crc32_options()
    safeio.save_torch({'w': torch.ones(3)}, tmp_path / 'a.pt')
    assert torch.serialization.get_crc32_options()
    with pytest.raises(trialbench.errors.CheckpointSaveError):  # fails inside torch.save
        safeio.save_torch({'w': torch.ones(3), 'f': lambda: 0}, tmp_path / 'b.pt')
    assert not (tmp_path / 'b.pt').exists()
    assert torch.serialization.get_crc32_options()
    assert torch.load(tmp_path / 'a.pt', weights_only=True)['w'].tolist() == [1.0, 1.0, 1.0]


def test_load_keeps_nothing_mapped_from_the_file(tmp_path):
    trial = trained(tmp_path)
    path = tmp_path / 'trial.pt'
    trial.save(path)
    other = guide_trial()
    other.load(path)
    kept = [t for s in other.optimizer.state.values() for t in s.values()
            if isinstance(t, torch.Tensor)]
    kept += list(other.model.state_dict().values())
    assert kept and all(t.untyped_storage().filename is None for t in kept)
    for mine, theirs in zip(other.model.parameters(), trial.model.parameters()):
        assert torch.equal(mine, theirs)
    os.unlink(path)  # nothing holds the file: the trial keeps working without it
    other.with_train_generator(guide_data(n=16, batch_size=4))
    other.run(2)
    assert len(other.history) == 2


def test_safetensors_export_is_written_in_place(tmp_path):
    trial = trained(tmp_path)
    path, side = trial.export(tmp_path / 'm.safetensors')
    assert sorted(os.listdir(tmp_path)) == ['m.safetensors', 'm.safetensors.json']
    data = trialbench.load_checkpoint(path)
    assert data['metadata']['name'] == trial.name
    for k, v in trial.model.state_dict().items():
        assert torch.equal(data['model'][k], v)
