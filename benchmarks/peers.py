"""Other training libraries, each run with progress bars, loggers and checkpointing off.

A peer is used only where it is installed (``pip install trialbench[bench]``); one that
fails to import or to run is reported as skipped, with the reason.
"""

import importlib
import logging
import warnings

__all__ = ['PEERS', 'peer_runner']


def _ignite(workload):
    from ignite.engine import create_supervised_trainer

    def prepare():
        model, optimizer = workload.build()
        trainer = create_supervised_trainer(model, optimizer, workload.criterion)
        return lambda: trainer.run(workload.loader, max_epochs=1)
    return prepare


def _poutyne(workload):
    from poutyne import Model

    def prepare():
        net, optimizer = workload.build()
        model = Model(net, optimizer, workload.criterion)
        return lambda: model.fit_generator(workload.loader, epochs=1, verbose=False)
    return prepare


def _torchbearer(workload):
    import torchbearer

    def prepare():
        model, optimizer = workload.build()
        trial = torchbearer.Trial(model, optimizer, workload.criterion, metrics=['loss'],
                                  verbose=0).with_train_generator(workload.loader)
        return lambda: trial.run(1, verbose=0)
    return prepare


def _lightning(workload):
    import lightning as L
    for name in ('lightning', 'lightning.pytorch', 'lightning.fabric'):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings('ignore', module='lightning')

    class Wrapped(L.LightningModule):
        def __init__(self, net, criterion, lr):
            super().__init__()
            self.net, self.criterion, self.lr = net, criterion, lr

        def training_step(self, batch, index):
            x, y = batch
            return self.criterion(self.net(x), y)

        def configure_optimizers(self):
            import torch
            return torch.optim.SGD(self.parameters(), lr=self.lr)

    def prepare():
        net, _ = workload.build()
        module = Wrapped(net, workload.criterion, workload.lr)
        trainer = L.Trainer(max_epochs=1, accelerator='cpu', devices=1, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, num_sanity_val_steps=0)
        return lambda: trainer.fit(module, workload.loader)
    return prepare


#: Peer name -> (module to import, runner factory).
PEERS = {'ignite': ('ignite', _ignite), 'poutyne': ('poutyne', _poutyne),
         'torchbearer': ('torchbearer', _torchbearer), 'lightning': ('lightning', _lightning)}


def peer_runner(name, workload):
    """``(prepare, None)`` for a usable peer, or ``(None, reason)`` when it is skipped."""
    module, factory = PEERS[name]
    try:
        importlib.import_module(module)
    except Exception as exc:  # not installed or broken on this torch
        return None, f'not importable ({type(exc).__name__}: {str(exc)[:120]})'
    try:
        prepare = factory(workload)
        prepare()()  # one probe run: a peer that cannot train here is skipped, not fatal
    except Exception as exc:
        return None, f'failed to run ({type(exc).__name__}: {str(exc)[:120]})'
    return prepare, None
