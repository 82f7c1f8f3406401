"""The one list of hooks, in firing order. Callback methods and decorators are made from it."""

__all__ = ['EVENTS', 'TRAIN_STEP_EVENTS', 'VALIDATION_STEP_EVENTS']

#: Every hook a callback can implement, in the order a run fires them.
EVENTS = (
    'on_start',                   # a run begins (after any resume)
    'on_start_epoch',             # an epoch begins
    'on_start_training',          # the training pass of the epoch begins
    'on_sample',                  # a training batch is in state[X] / state[Y_TRUE]
    'on_forward',                 # state[Y_PRED] holds the model's output
    'on_criterion',               # state[LOSS] holds the loss
    'on_backward',                # gradients are computed, before the optimizer step
    'on_step_training',           # the optimizer stepped; running metrics are updated
    'on_end_training',            # the training pass ended
    'on_start_validation',        # the validation pass begins
    'on_sample_validation',       # a validation batch is in state
    'on_forward_validation',      # its output is in state[Y_PRED]
    'on_criterion_validation',    # its loss is in state[LOSS]
    'on_step_validation',         # validation running metrics are updated
    'on_end_validation',          # the validation pass ended
    'on_end_epoch',               # state[METRICS] is the epoch record; schedulers step here
    'on_checkpoint',              # every epoch-end update is done: checkpointers write here
    'on_end',                     # the run ended (completed, stopped, interrupted or failed)
)

TRAIN_STEP_EVENTS = ('on_sample', 'on_forward', 'on_criterion', 'on_backward', 'on_step_training')
VALIDATION_STEP_EVENTS = ('on_sample_validation', 'on_forward_validation',
                          'on_criterion_validation', 'on_step_validation')
