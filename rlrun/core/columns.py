"""Names of batch columns and state components shared by every part of rlrun."""

DEFAULT_MODULE_ID = "default_policy"

COMPONENT_RL_MODULE = "rl_module"
COMPONENT_OPTIMIZER = "optimizer"
# Non-gradient learner variables (e.g. PPO's adaptive KL coefficient): needed
# to continue training exactly, so they travel with the optimizer state.
COMPONENT_LEARNER_VARS = "learner_vars"


class Columns:
    """Batch keys. Sampled batches are time-major: each column is [T, B, ...]."""

    OBS = "obs"
    NEXT_OBS = "new_obs"
    ACTIONS = "actions"
    REWARDS = "rewards"
    TERMINATEDS = "terminateds"
    TRUNCATEDS = "truncateds"
    ACTION_DIST_INPUTS = "action_dist_inputs"
    ACTION_LOGP = "action_logp"
    VF_PREDS = "vf_preds"
    ADVANTAGES = "advantages"
    VALUE_TARGETS = "value_targets"
    # 0 for the rows where a vector env performed its autoreset step (gymnasium's
    # NEXT_STEP mode): the action there was ignored, so the row trains nothing.
    LOSS_MASK = "loss_mask"
    # Observation after the last step of a fragment, [B, ...]: bootstraps the
    # value of unfinished episodes at the fragment's end.
    BOOTSTRAP_OBS = "bootstrap_obs"
    # Multi-agent runs with a centralised value function (model.central_value, MAPPO): the env's global state
    # at each row (or all agents' observations), and after the fragment's last step.
    STATE = "state"
    BOOTSTRAP_STATE = "bootstrap_state"
    # Recurrent modules (RLlib's names): the module's memory fed into each row's forward pass, [T, B, S] (zeros
    # at an episode's first step), what the forward pass returns, and the memory after a fragment's last step
    # ([B, S]), which the bootstrap observation's value is computed from.
    STATE_IN = "state_in"
    STATE_OUT = "state_out"
    BOOTSTRAP_STATE_IN = "bootstrap_state_in"
    # A recurrent module with `model.lstm_use_prev_action` / `lstm_use_prev_reward` (RLlib's names): the action
    # taken and the reward received one step before each row (zeros at an episode's first step), and after a
    # fragment's last step.
    PREV_ACTIONS = "prev_actions"
    PREV_REWARDS = "prev_rewards"
    BOOTSTRAP_PREV_ACTIONS = "bootstrap_prev_actions"
    BOOTSTRAP_PREV_REWARDS = "bootstrap_prev_rewards"
    # Replay: steps a transition spans (its bootstrap is discounted by gamma ** n_step),
    # its importance weight, and the buffer slot its new priority goes back to.
    N_STEP = "n_step"
    # Offline rows of a truncated episode: its final observation and gamma ** (steps to the end), so a value
    # target (VALUE_TARGETS, the return-to-go) can bootstrap from V(final obs); the discount is 0 after a
    # termination.
    FINAL_OBS = "final_obs"
    FINAL_DISCOUNT = "final_discount"
    WEIGHTS = "weights"
    INDICES = "indices"


# A row column -> the column that holds its value after a fragment's last step ([B, ...], no time axis), which
# value functions bootstrap from.
BOOTSTRAP_COLUMNS = {Columns.OBS: Columns.BOOTSTRAP_OBS, Columns.STATE: Columns.BOOTSTRAP_STATE,
                     Columns.STATE_IN: Columns.BOOTSTRAP_STATE_IN, Columns.PREV_ACTIONS: Columns.BOOTSTRAP_PREV_ACTIONS,
                     Columns.PREV_REWARDS: Columns.BOOTSTRAP_PREV_REWARDS}
# The row columns a recurrent module reads at every step of a sequence (its state only at the first).
RECURRENT_STEP_INPUTS = (Columns.OBS, Columns.PREV_ACTIONS, Columns.PREV_REWARDS)
